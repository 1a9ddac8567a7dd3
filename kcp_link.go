package uxp

import (
	_ "unsafe" // for go:linkname

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcp-go's raw KCP only flushes from Update, which waits for the next
// interval tick (10 ms by default): every message would sit in the send
// queue for half an interval on average. kcp-go's own UDPSession avoids that
// by calling the unexported flush right after Send; we need the same to
// keep latency at the network's, so we link to it. TestKCPLinkname guards
// the signature against a kcp-go upgrade.
//
//go:linkname kcpFlush github.com/xtaci/kcp-go/v5.(*KCP).flush
func kcpFlush(k *kcp.KCP, flushType kcp.FlushType) uint32

// kcpNow is KCP's own millisecond clock, the one Check answers in. We need
// it to turn Check's answer into a deadline for the shard's timer heap.
//
//go:linkname kcpNow github.com/xtaci/kcp-go/v5.currentMs
func kcpNow() uint32
