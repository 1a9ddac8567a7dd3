package arq

import (
	"math/bits"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// Bounds on what a lane's peer can make its KCP spend (issue 13; the table
// in docs/security.md, "Reliability-layer and FEC bounds").
//
// kcp-go trusts its peer in two costly ways, and Input filters the
// segments of each frame before KCP sees them (segFilter):
//
//   - Every ACK segment walks the send buffer from its oldest segment to
//     the one acknowledged, twice (parse_ack, parse_fastack). A datagram
//     packed with ACKs for the newest of 256 unacknowledged segments cost
//     about 100 µs against 2 to 10 µs for an ordinary ACK. Only the first
//     ACK of each sent segment tells KCP anything; the lane remembers which
//     sns it passed on (lane.acked, a bitmap over the send window) and
//     passes a repeat with its sn moved below its own una, where KCP
//     returns at once. The segment still carries its una, wnd and ts, so
//     nothing else changes. So KCP walks the buffer at most once per
//     segment this side sent, whatever the peer repeats, and one datagram
//     makes it walk at most (its segments) × the send window.
//   - Every data segment KCP stores takes a 1,500-byte buffer of kcp-go's
//     whatever its length, in the receive heap (beyond a hole) or the
//     receive queue (an incomplete message). A peer could announce a
//     256-fragment message and send empty segments beyond a hole: 12.5 KB
//     sent pinned 726 KB per lane. Now a data segment is left out unless
//     its sn is below the end of the window this side advertised
//     (rcv_nxt + rcv_wnd − queued) plus RecvSlack, so a lane stores at most
//     RecvWindow + RecvSlack segments; beyond the sn KCP expects next, the
//     session's lanes together store at most Config.RecvBudget (a copy of a
//     segment already held is still taken: it costs nothing and earns the
//     sender its ACK); and a fragment count beyond what a MaxMessageSize
//     message needs at the smallest MSS any peer can have is malformed.
//
// Empty and short data segments cannot be refused: skip markers
// (deadline.go) are exactly that. The budget counts segments, not bytes,
// for the same reason kcp-go does.

// RecvHeld is the data segments the lanes store (kcp-go holds each in a
// 1,500-byte buffer): at most Config.RecvBudget beyond one per lane.
func (ls *Lanes) RecvHeld() int {
	n := 0
	for _, l := range ls.lanes {
		if l.arq != nil {
			_, _, held, _ := ls.sh.KCP.RecvState(l.arq)
			n += held
		}
	}
	return n
}

// ackedWords is the size of a lane's acked bitmap in 64-bit words: a power
// of two covering the send window and one message's overshoot (admitOne).
func ackedWords(sendWindow, maxFragments int) int {
	n := sendWindow + maxFragments
	return 1 << max(0, bits.Len(uint(n-1))-6)
}

// forgetAcked clears the acked bits of the sns una now acknowledges.
func (l *lane) forgetAcked(una uint32) {
	size := uint32(len(l.acked) * 64)
	if size == 0 {
		return
	}
	if una-l.sndUna >= size {
		clear(l.acked)
		return
	}
	for sn := l.sndUna; sn != una; sn++ {
		i := sn & (size - 1)
		l.acked[i/64] &^= 1 << (i % 64)
	}
}

type segAction uint8

const (
	segKeep    segAction = iota // pass to KCP as it is
	segNeutral                  // a repeated ACK: pass with its sn out of range
	segSkip                     // leave out
	segBad                      // malformed: ends the frame
)

// segFilter builds what Input hands KCP: the frame's segments as they
// are, until one must change; from then a copy in the shard's scratch.
type segFilter struct {
	ls   *Lanes
	l    *lane
	k    *kcp.KCP
	body []byte
	off  int    // bytes of body taken so far
	mod  bool   // a segment was changed or left out: KCP gets out
	out  []byte // the filtered copy, once mod is set

	recvRead       bool // the receive state below was read
	known          bool // internal/kcpx reads the receive state (fast path)
	rcvNxt, rcvEnd uint32
	sessHeld       int // segments the session stores; -1 until counted
}

// push decides about a data segment.
func (f *segFilter) push(seg wire.Segment) segAction {
	if frg := seg.Frg(); frg != 0 && int(frg) > f.ls.cfg.MaxFrag {
		return segBad // more fragments than a message this side accepts
	}
	if !f.recvRead {
		f.recvRead, f.sessHeld = true, -1
		f.rcvNxt, f.rcvEnd, _, f.known = f.ls.sh.KCP.RecvState(f.k)
	}
	if !f.known {
		return segKeep // no layout: KCP's own window applies
	}
	sn := seg.Sn()
	switch {
	case int32(sn-f.rcvNxt) < 0:
		f.ls.repeatSegs.Add(1)
		return segKeep // a repeat: KCP only acknowledges it
	case int32(sn-f.rcvEnd-f.ls.cfg.RecvSlack) >= 0:
		// Beyond the window this side advertised, and its slack: KCP
		// would store it. The sender retransmits it.
		f.ls.out.Event(EvRecvBound)
		return segSkip
	case sn == f.rcvNxt:
		// The segment KCP waits for is always taken: it lets messages
		// out rather than adding to the holes.
		return segKeep
	}
	if f.sessHeld < 0 {
		f.sessHeld = f.ls.RecvHeld()
	}
	if f.sessHeld >= f.ls.cfg.RecvBudget {
		if f.ls.sh.KCP.Stored(f.k, sn) {
			f.ls.repeatSegs.Add(1)
			return segKeep // a copy of one held: KCP only acknowledges it again
		}
		f.ls.out.Event(EvRecvBound)
		return segSkip
	}
	if f.ls.sh.KCP.Stored(f.k, sn) {
		f.ls.repeatSegs.Add(1) // a copy of one held: KCP only acknowledges it again
	}
	f.sessHeld++
	return segKeep
}

// ack decides about an ACK segment, after confirm took its una.
func (f *segFilter) ack(seg wire.Segment) segAction {
	l := f.l
	sn := seg.Sn()
	size := uint32(len(l.acked) * 64)
	d := sn - l.sndUna
	if int32(d) < 0 || d >= size || !l.sentData || int32(sn-l.maxSentSN) > 0 {
		// Below una, or not sent by KCP yet (the send buffer spans at
		// most the send window; a skip marker may be acknowledged before
		// KCP sends its segment): KCP returns at once.
		return segKeep
	}
	i := sn & (size - 1)
	if l.acked[i/64]&(1<<(i%64)) != 0 {
		return segNeutral
	}
	l.acked[i/64] |= 1 << (i % 64)
	l.ackWalks += uint64(d) + 1
	return segKeep
}

// take adds seg to what KCP gets, as act says.
func (f *segFilter) take(seg wire.Segment, act segAction) {
	if act != segKeep && !f.mod {
		f.mod = true
		f.out = append(f.ls.sh.seg[:0], f.body[:f.off]...)
	}
	f.off += len(seg)
	if !f.mod {
		return
	}
	switch act {
	case segKeep:
		f.out = append(f.out, seg...)
	case segNeutral:
		f.out = append(f.out, seg...)
		// Below the una it carries: KCP has taken that una before it
		// looks at the sn, so its snd_una is past it.
		wire.Segment(f.out[len(f.out)-len(seg):]).SetSn(seg.Una() - 1)
	}
}

// segments returns what KCP gets.
func (f *segFilter) segments() []byte {
	if !f.mod {
		return f.body[:f.off]
	}
	f.ls.sh.seg = f.out[:0]
	return f.out
}
