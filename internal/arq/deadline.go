package arq

import (
	"slices"
	"time"

	"github.com/uxp-go/uxp/internal/wire"
)

// Deadlines. A reliable message may carry a time limit (its expiry, on
// the owner's monotonic clock). Once it can no longer arrive in time (its
// expiry, less half the smoothed RTT and half the RTT variation, has
// passed), the message lapses: the sender abandons it without disturbing
// the lane's KCP conversation.
//
//   - Still in the backlog: it enters KCP as a one-byte skip message
//     instead, so the receiver can count it.
//   - Already in KCP and not acknowledged: each of its segments is sent
//     at once as a skip marker, a PUSH with the same conv, frg and sn
//     (and the una and wnd of the lane KCP's last segment) whose data is
//     replaced: a lone kind-1 byte for the message's first
//     segment, nothing for the others. From then on, every time KCP
//     retransmits one of those segments (RTO or fast resend), the output
//     callback rewrites it the same way. The receiver's KCP takes the
//     markers as the missing segments, so the hole closes and the messages
//     behind it are delivered at once; the receiver reassembles a skip
//     message or a short deadline message and counts it as skipped.
//
// Why skip markers instead of removing the segments from KCP: kcp-go
// exposes neither its send buffer nor the receiver's next expected
// sequence number, and both ends must agree on the hole. The markers need
// only the output callback, and they cost a few bytes per abandoned
// segment instead of the message's payload.
//
// A message that arrived in time can still wait behind an earlier one: a
// plain message being retransmitted, or a lapsed one whose markers were
// lost. So each deadline message also carries its deadline on the
// receiver's clock (Output.PeerDeadline: the caller converts, from the
// peer's clock in its last heartbeat), and the receiver skips a complete
// message whose deadline has passed (Output.LocalClock) instead of
// delivering it late.
//
// Guarantee: a lapsed message's payload is never sent again, and a late
// one is never delivered, up to the error of the clock estimate (half the
// difference between the two one-way delays) and of the expiry margin.

// SkipMarkerCopies is how many times the skip markers of a lapsed message
// are sent at once. /* Implementation constant */
//
// A message lapses as late as it still could arrive (expiryMargin), so its
// markers reach the receiver just before its deadline, and nothing sent
// after them could. If every copy is lost the hole stays open until KCP
// resends one of the segments (rewritten as a marker), after the deadline:
// the lane stalls past it, for up to a retransmission timeout. With random
// loss p that happens to p^copies of the lapsed messages that did not
// arrive: with 2 copies, 1 % at 10 % loss, which held a 60 fps stream 10 ms
// past a skipped frame's deadline in about 1 of 150 runs of
// TestDeadlineFrames (both copies and two transmissions of the frame's
// last segment lost). Four copies make it 1 in 10,000 at 10 % loss; a
// marker is a segment header (24 bytes) per segment, plus a kind byte.
const SkipMarkerCopies = 4

// expiryMargin is how long before its expiry a message lapses: a copy
// sent later would arrive too late. Half the smoothed RTT is the one-way
// delay; half the RTT variation covers jitter.
func expiryMargin(t Timing) time.Duration { return t.SRTT/2 + t.RTTVar/2 }

// Expire lapses every message whose deadline can no longer be met.
func (ls *Lanes) Expire(now time.Time) {
	var cut time.Time
	for _, l := range ls.lanes {
		if l.minExpiry.IsZero() {
			continue
		}
		if cut.IsZero() {
			cut = now.Add(expiryMargin(ls.out.Timing()))
		}
		if l.minExpiry.After(cut) {
			continue
		}
		ls.begin(now)
		for i := range l.backlog {
			if m := &l.backlog[i]; !m.skip && !m.expiry.IsZero() && !m.expiry.After(cut) {
				l.queued -= len(m.data)
				ls.sh.putMsgBuf(m.buf)
				m.data, m.buf, m.skip = nil, nil, true
				l.ctr.Expired.Add(1)
			}
		}
		for i := range l.inflight {
			if m := &l.inflight[i]; !m.lapsed && !m.expiry.IsZero() && !m.expiry.After(cut) {
				m.lapsed = true
				l.lapsed++
				l.queued -= m.size
				l.ctr.Expired.Add(1)
				ls.sendSkipMarkers(l, m)
			}
		}
		l.recomputeExpiry()
	}
}

// sendSkipMarkers sends a skip marker for every segment of a lapsed
// message, bypassing KCP (which would only resend them at its next RTO).
// Segments that already arrived are ignored by the receiver's KCP as
// duplicates.
func (ls *Lanes) sendSkipMarkers(l *lane, m *laneSent) {
	b := ls.skipScratch[:0]
	send := func(b []byte) {
		// SkipMarkerCopies times, in separate packets: a lost marker
		// keeps the hole open until KCP's next retransmission, which
		// stalls the lane.
		for range SkipMarkerCopies {
			ls.emitCopy(l, b, Sent{Data: true, Bytes: len(b), Skip: true})
		}
	}
	for sn := m.firstSN; int32(sn-m.lastSN) <= 0; sn++ {
		if len(b)+wire.SegmentHeaderSize+1 > ls.mtu {
			send(b)
			b = b[:0]
		}
		var h [wire.SegmentHeaderSize]byte
		seg := wire.Segment(h[:])
		seg.SetConv(ls.cfg.Conv)
		seg.SetCmd(wire.CmdPush)
		seg.SetFrg(byte(m.lastSN - sn))
		// wnd and una: the peer's KCP takes them from every segment.
		seg.SetWnd(l.outWnd)
		seg.SetTs(ls.kcpMs())
		seg.SetSn(sn)
		seg.SetUna(l.outUna)
		if sn == m.firstSN {
			seg.SetLen(1)
		}
		b = append(b, h[:]...)
		if sn == m.firstSN {
			b = append(b, wire.LaneMsgSkip)
		}
	}
	if len(b) > 0 {
		send(b)
	}
	ls.skipScratch = b[:0]
}

// lapsedAt returns the lapsed message that segment sn belongs to, or nil.
func (l *lane) lapsedAt(sn uint32) *laneSent {
	if l.lapsed == 0 {
		return nil
	}
	i, _ := slices.BinarySearchFunc(l.inflight, sn, func(m laneSent, sn uint32) int {
		return int(int32(m.lastSN - sn))
	})
	if i == len(l.inflight) || int32(sn-l.inflight[i].firstSN) < 0 || !l.inflight[i].lapsed {
		return nil
	}
	return &l.inflight[i]
}

// skipSegment rewrites a PUSH segment in place into a skip marker: the
// first segment of a message keeps one byte, the kind-1 marker; the others
// keep none. It returns the shortened segment.
func skipSegment(seg wire.Segment, first bool) wire.Segment {
	n := 0
	if first {
		n = 1
		seg[wire.SegmentHeaderSize] = wire.LaneMsgSkip
	}
	seg.SetLen(uint32(n))
	return seg[:wire.SegmentHeaderSize+n]
}

// recomputeExpiry finds the lane's earliest expiry not yet lapsed.
func (l *lane) recomputeExpiry() {
	var first time.Time
	for i := range l.backlog {
		if m := &l.backlog[i]; !m.skip && !m.expiry.IsZero() && (first.IsZero() || m.expiry.Before(first)) {
			first = m.expiry
		}
	}
	for i := range l.inflight {
		if m := &l.inflight[i]; !m.lapsed && !m.expiry.IsZero() && (first.IsZero() || m.expiry.Before(first)) {
			first = m.expiry
		}
	}
	l.minExpiry = first
}
