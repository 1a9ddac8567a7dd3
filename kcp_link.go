package uxp

import (
	"github.com/uxp-go/uxp/internal/kcp"
)

// kcpFlush sends what KCP holds right away. Raw KCP only flushes from
// Update, which waits for the next interval tick (10 ms by default): every
// message would sit in the send queue for half an interval on average.
func kcpFlush(k *kcp.KCP, flushType kcp.FlushType) uint32 { return k.Flush(flushType) }

// kcpNow is KCP's own millisecond clock, the one Check answers in. We need
// it to turn Check's answer into a deadline for the shard's timer heap.
func kcpNow() uint32 { return kcp.Now() }
