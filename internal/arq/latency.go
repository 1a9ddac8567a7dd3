package arq

import "time"

// Message delivery latency, measured by the sender without any wire change.
//
// KCP numbers segments sequentially from 0, and a message of n bytes takes
// max(1, ceil(n/mss)) consecutive numbers, so the sender knows which
// segment numbers each message it hands to a lane's KCP occupies. Every
// ACK the peer sends back on that lane carries una: the peer's next expected
// segment number, which passes a message's last segment exactly when the
// peer has the whole message in order, that is when the peer delivers it
// (uxp delivers inside the same input call). So
//
//	latency = (first una past the message) - (time the message entered KCP)
//	          - RTT/2
//
// where RTT is the heartbeat's smoothed round trip (Timing.SRTT), which estimates the
// one-way trip of the una back to us. Both timestamps are on our own clock,
// so no clock offset between the peers is involved, and retransmissions,
// FEC repairs and head-of-line blocking are all inside the measurement.
// The estimate errs by path asymmetry and by how long the peer held its
// ACK (nothing without FEC, up to KCP.Interval with it). Until the first
// heartbeat RTT, half the smallest message round trip seen stands in.
//
// Not every message is sampled: deliveryTracker remembers at most
// trackerSlots messages in flight and skips new ones while it is full, so a
// bulk sender's histogram is a sample of its messages.

/* Implementation constants */
const trackerSlots = 128

// TrackerMinSlots is the size a tracker's ring starts with.
const TrackerMinSlots = 4

// deliveryTracker is pure: the owner (the session's shard) passes now.
type deliveryTracker struct {
	nextSN   uint32        // segment number the next message starts at
	ring     []inflightMsg // grows by doubling up to trackerSlots
	head, n  int
	minRound time.Duration // smallest sent-to-una time seen; 0 = none yet
}

type inflightMsg struct {
	end  uint32 // segment number just past the message
	sent time.Time
}

// sent records a message of segs segments handed to KCP at now.
func (t *deliveryTracker) sent(segs int, now time.Time) {
	t.nextSN += uint32(segs)
	if t.n == len(t.ring) {
		if len(t.ring) == trackerSlots {
			return // full: this message is not sampled
		}
		t.grow()
	}
	t.ring[(t.head+t.n)%len(t.ring)] = inflightMsg{end: t.nextSN, sent: now}
	t.n++
}

// grow doubles the ring (from 4 slots): a session with a few messages in
// flight, the common case, holds 128 bytes here instead of 4 KiB.
func (t *deliveryTracker) grow() {
	r := make([]inflightMsg, max(TrackerMinSlots, min(2*len(t.ring), trackerSlots)))
	for i := range t.n {
		r[i] = t.ring[(t.head+i)%len(t.ring)]
	}
	t.ring, t.head = r, 0
}

// acked takes the peer's una and returns the latency of the oldest sampled
// message it completes, if any; call it until ok is false. rtt is the
// heartbeat's smoothed RTT, zero if unknown.
func (t *deliveryTracker) acked(una uint32, rtt time.Duration, now time.Time) (latency time.Duration, ok bool) {
	if t.n == 0 {
		return 0, false
	}
	m := &t.ring[t.head]
	// Serial-number comparison: una at or past the message's end.
	if int32(una-m.end) < 0 {
		return 0, false
	}
	t.head = (t.head + 1) % len(t.ring)
	t.n--
	round := max(now.Sub(m.sent), 0)
	if t.minRound == 0 || round < t.minRound {
		t.minRound = round
	}
	back := rtt / 2
	if rtt <= 0 {
		back = t.minRound / 2
	}
	return max(round-back, 0), true
}

// noteUna feeds a una the peer sent back for a lane (input.go) to that
// lane's delivery tracker, and reports the latencies of the messages it
// completes (Output.Latency). It runs before the segment goes to KCP.
func (ls *Lanes) noteUna(l *lane, una uint32, now time.Time) {
	t := &l.lat
	if t.n == 0 || int32(una-t.ring[t.head].end) < 0 {
		return // completes nothing: the common case, without Timing
	}
	rtt := ls.out.Timing().SRTT
	for t.n > 0 {
		d, ok := t.acked(una, rtt, now)
		if !ok {
			return
		}
		ls.out.Latency(d)
	}
}
