package kcpx

import (
	"time"
	_ "unsafe" // for go:linkname

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcp-go's raw KCP only flushes from Update, which waits for the next
// interval tick (10 ms by default): every message would sit in the send
// queue for half an interval on average. kcp-go's own UDPSession avoids that
// by calling the unexported flush right after Send; we need the same to
// keep latency at the network's, so we link to it. A linkname is not
// type-checked: it is called only when the version gate (gate.go) passed,
// and TestLinkedFlush checks what it emits.
//
//go:linkname linkedFlush github.com/xtaci/kcp-go/v5.(*KCP).flush
func linkedFlush(k *kcp.KCP, flushType kcp.FlushType) uint32

// linkedNow is KCP's own millisecond clock, the one Check answers in.
//
//go:linkname linkedNow github.com/xtaci/kcp-go/v5.currentMs
func linkedNow() uint32

// linkedRefTime is the reference point of kcp-go's millisecond clock:
// currentMs is time.Since(refTime) in milliseconds. Read once at init,
// and only when the version gate passed (gate.go refTime); Ms converts
// with it, so that this package's clock and kcp-go's are one.
//
//go:linkname linkedRefTime github.com/xtaci/kcp-go/v5.refTime
var linkedRefTime time.Time
