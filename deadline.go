package uxp

import (
	"slices"
	"time"

	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/wire"
)

// Deadlines. A reliable message may carry a time limit. Once it can no
// longer arrive in time (its deadline, less half the smoothed RTT and half
// the RTT variation, has passed), the message lapses: the sender abandons
// it without disturbing the lane's KCP conversation.
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
// receiver's clock, in microseconds since the receiver's epoch, which the
// sender estimates from the last heartbeat (the peer's clock value it
// carried, plus the time since, plus half the smoothed RTT; 0 until there
// is an RTT). The receiver skips a complete message whose deadline has
// passed instead of delivering it late.
//
// Guarantee: a lapsed message's payload is never sent again, and a late
// one is never delivered, up to the error of the clock estimate (half the
// difference between the two one-way delays) and of the expiry margin.

// WriteWithDeadline queues msg on lane 0 like Write, with a time limit d
// from now. If the peer has not received it by then (as far as this side
// can tell from the RTT), it is abandoned: it is not sent again, and the
// peer skips it without holding back later messages. d must be positive;
// otherwise WriteWithDeadline returns ErrBadDeadline. d runs on the
// monotonic clock: a step of the wall clock (NTP) does not move it.
func (c *Conn) WriteWithDeadline(msg []byte, d time.Duration) (int, error) {
	return c.WriteLaneWithDeadline(0, msg, d)
}

// WriteLaneWithDeadline is WriteWithDeadline on the given lane; the
// deadline d replaces the lane's default.
func (c *Conn) WriteLaneWithDeadline(lane int, msg []byte, d time.Duration) (int, error) {
	if lane < 0 || lane >= len(c.ep.set.lanes) {
		return 0, ErrNoSuchLane
	}
	if d <= 0 {
		return 0, ErrBadDeadline
	}
	return c.write(pendReliable, lane, c.ep.expiryIn(d), msg)
}

// skipMarkerCopies is how many times the skip markers of a lapsed message
// are sent at once. /* Implementation constant */
const skipMarkerCopies = 2

// expiryMargin is how long before its deadline a message lapses: a copy
// sent later would arrive too late. Half the smoothed RTT is the one-way
// delay; half the RTT variation covers jitter.
func (c *Conn) expiryMargin() time.Duration { return c.hb.srtt/2 + c.hb.rttvar/2 }

// peerDeadline converts an expiry (endpoint.mono, timebase.go) to the
// peer's clock, in microseconds, for the lane message header; 0 when no
// estimate exists yet. It is the one place a local instant becomes a peer
// time.
func (c *Conn) peerDeadline(expiry int64) uint64 {
	if c.peerAt.IsZero() || c.hb.srtt <= 0 {
		return 0
	}
	peer := int64(c.peerTS) + int64(c.ep.monoTime(expiry).Sub(c.peerAt)) + int64(c.hb.srtt/2)
	if peer <= 0 {
		return 0
	}
	return max(uint64(peer)/1000, 1)
}

// expireLanes lapses every message whose deadline can no longer be met.
func (c *Conn) expireLanes(now time.Time) {
	cut := c.ep.mono(now.Add(c.expiryMargin()))
	for _, l := range c.lanes {
		if l.minExpiry == 0 || l.minExpiry > cut {
			continue
		}
		for i := range l.backlog {
			if m := &l.backlog[i]; !m.skip && m.expiry != 0 && m.expiry <= cut {
				l.queued -= len(m.data)
				m.data, m.skip = nil, true
				l.ctr.expired.Add(1)
			}
		}
		for i := range l.inflight {
			if m := &l.inflight[i]; !m.lapsed && m.expiry != 0 && m.expiry <= cut {
				m.lapsed = true
				l.lapsed++
				l.queued -= m.size
				l.ctr.expired.Add(1)
				c.sendSkipMarkers(l, m)
			}
		}
		l.recomputeExpiry()
	}
}

// sendSkipMarkers sends a skip marker for every segment of a lapsed
// message, bypassing KCP (which would only resend them at its next RTO).
// Segments that already arrived are ignored by the receiver's KCP as
// duplicates.
func (c *Conn) sendSkipMarkers(l *lane, m *laneSent) {
	mtu := c.kcpMTU()
	b := c.skipScratch[:0]
	ts := kcpx.Now()
	for sn := m.firstSN; int32(sn-m.lastSN) <= 0; sn++ {
		if len(b)+wire.SegmentHeaderSize+1 > mtu {
			for range skipMarkerCopies {
				c.laneOutput(l, b, true)
			}
			b = b[:0]
		}
		var h [wire.SegmentHeaderSize]byte
		seg := wire.Segment(h[:])
		seg.SetConv(c.id)
		seg.SetCmd(wire.CmdPush)
		seg.SetFrg(byte(m.lastSN - sn))
		// wnd and una: the peer's KCP takes them from every segment.
		seg.SetWnd(l.outWnd)
		seg.SetTs(ts)
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
		// Twice, in separate packets: a lost marker keeps the hole open
		// until KCP's next retransmission, which stalls the lane.
		for range skipMarkerCopies {
			c.laneOutput(l, b, true)
		}
	}
	c.skipScratch = b[:0]
}

// laneLapsed returns the lapsed message that segment sn belongs to, or nil.
func (c *Conn) laneLapsed(l *lane, sn uint32) *laneSent {
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
	var min int64
	for i := range l.backlog {
		if m := &l.backlog[i]; !m.skip && m.expiry != 0 && (min == 0 || m.expiry < min) {
			min = m.expiry
		}
	}
	for i := range l.inflight {
		if m := &l.inflight[i]; !m.lapsed && m.expiry != 0 && (min == 0 || m.expiry < min) {
			min = m.expiry
		}
	}
	l.minExpiry = min
}
