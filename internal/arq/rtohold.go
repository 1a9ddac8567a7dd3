package arq

import (
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Holding retransmission timeouts while the path is only slow.
//
// KCP resends a segment when its retransmission timeout comes: its smoothed
// RTT plus four variations, at least 30 ms in no-delay mode, and resends
// every segment whose timeout came in the same flush. A queue that grows
// faster than that estimate follows (a bottleneck filling in startup or at
// a bandwidth probe, the link's rate falling) makes the timeout fire on
// every segment still waiting in it. Through the bench's 20 Mbit/s
// bottleneck with no propagation delay and 5 % random loss
// (bottleneck-loss), 74 % of KCP's timeouts resent segments that had
// arrived, in bursts of a whole flight whenever the one-way delay passed
// 30 ms: 1.1 % of the packets the bottleneck carried were such copies,
// of 1.4 % copies in all.
// The Eifel response (congestion.go spurious) raises the floor only after
// such a burst, and not beyond a few minimum RTTs, which on that path is
// below KCP's own floor.
//
// So, as RACK (RFC 8985) judges losses by send order and the latest RTT
// rather than by a timer alone, a lane holds a segment's timeout while the
// acknowledgements show that the path delivers but has not reached the
// segment yet. A segment whose timeout comes is resent as before when
//
//   - a copy sent after its last one was acknowledged (the path does not
//     reorder: it is lost);
//   - no acknowledgement came since it was sent (silence: a stalled peer,
//     a dead path or a lost tail, which KCP's timeout and the tail-loss
//     probes repair as before);
//   - it was sent maxHold ago;
//   - the newest acknowledged copy's round trip is within holdSlack of
//     the path's minimum RTT (no queue: a timeout, tens of round trips
//     after the send, is no queueing delay); or
//   - spuriousMinRTTs minimum RTTs reach KCP's floor: the Eifel response
//     (congestion.go spurious) can raise the floor on such a path, and
//     is left in charge there, as before. (With the hold on a 20 ms
//     path, TestBottleneckStepDrain's 16 KiB case left a standing queue
//     after the rate step in 1-2 % of runs, for a reason not found.)
//
// The path's minimum RTT is the least the controller ever reported
// (congestion.go pathMinRTT), not its windowed one, which expires to a
// standing queue's delay. A segment whose last copy was a tail-loss
// probe's is judged by KCP's own copy, which its timeout is for: the
// probe went out on a timer of its own and says nothing of the queue
// (both were once reasons not to hold, and let spurious timeouts through
// on a path with no loss: TestBottleneckTimeoutHoldNoLoss).
//
// Otherwise its timeout moves to the round trip the newest acknowledged
// copy took, plus a quarter and holdSlack, after its send; once that has
// passed too, by a quarter of that round trip and holdSlack at a time for
// as long as acknowledgements keep coming that often, or within the
// longest the peer may hold one (Timing.MaxAckDelay) (a queue that grows
// delays each copy more than the one before). A segment lost while the
// queue is long is resent at most that round trip later than its
// timeout, and usually sooner, on KCP's fast retransmission, once the
// copies sent after it are acknowledged. Fast and early retransmissions
// are not held: they come first in KCP's flush, on evidence.
//
// The hold runs before every flush that can resend on a timeout: the
// lanes' own (Flush, Timers, KCP's interval tick) and the one kcp-go's
// Input makes when the window slid.
//
// Only with Config.TimeoutHold and a congestion controller
// (SetController): the send order and times are the congestion
// accounting's.

/* Implementation constants */
const (
	// holdSlack is added to the expected round trip: KCP's timestamps and
	// timers are in milliseconds, and the peer may hold an ACK for a
	// second segment.
	holdSlack = 2 * time.Millisecond

	// maxHold bounds how long after it was sent a segment's timeout can
	// be held: beyond it KCP's timeout goes ahead whatever the ACKs say.
	maxHold = time.Second
)

// rackState is the newest copy acknowledged, in send order.
type rackState struct {
	valid bool
	seq   uint32        // its sentSlot.seq
	rtt   time.Duration // from its send to its acknowledgement
	// flow is when an acknowledgement last confirmed a segment in
	// flight, whichever copy.
	flow time.Time
}

// delivered notes that a copy of s was acknowledged at the current
// call's time: sure says it was the last one sent.
func (ls *Lanes) delivered(s *sentSlot, sure bool) {
	r := &ls.rack
	r.flow = ls.now
	if !sure || r.valid && int32(s.seq-r.seq) <= 0 {
		return
	}
	r.valid, r.seq = true, s.seq
	r.rtt = ls.now.Sub(ls.unpackTime(s.sent))
}

// holdTimeouts postpones the timeouts of l's segments falling due now
// that the ACKs show still queued (see above). Call it before each flush
// of l's KCP that can resend on a timeout. It walks l's segments in flight
// only once a timeout may be due: a walk notes the earliest one
// (lane.holdNext), and a segment sent later times out no sooner than
// KCP's floor on its timeout after it.
func (ls *Lanes) holdTimeouts(l *lane) {
	if !ls.cfg.TimeoutHold || ls.cc == nil || l.arq == nil || !ls.rack.valid || l.sent.n == 0 {
		return
	}
	// KCP's flush reads its own clock, which may be a millisecond ahead
	// of the event's (kcpx.Ms): a timeout due within it is judged too.
	ms := ls.kcpMs()
	if l.holdNextSet && int32(ms+1-l.holdNext) < 0 {
		return
	}
	floor, _ := ls.sh.KCP.MinRTO(l.arq)
	minRTT := ls.pathMinRTT() // not the controller's windowed one (see there)
	if minRTT*spuriousMinRTTs >= time.Duration(floor)*time.Millisecond {
		// A path long enough for the Eifel response to raise KCP's
		// floor (congestion.go spurious) is left to it, as before
		// (see above).
		return
	}
	if minRTT <= 0 || ls.rack.rtt <= minRTT+holdSlack {
		// No queue for a segment to wait in: the newest round trip
		// is the path's own. A timeout comes tens of round trips after
		// its segment's send then (holding one behind a tail-loss
		// probe's younger copy only delayed the repair of a lost
		// request in the bench's loss scenario).
		return
	}
	if ls.holdFn == nil {
		ls.holdFn = ls.holdOne // bound once: a closure per call would allocate
	}
	ls.holdLane, ls.holdMs = l, ms
	ls.holdQuiet = max(ls.rack.rtt/4, ls.out.Timing().MaxAckDelay) + holdSlack
	next, ok := ls.sh.KCP.HoldTimeouts(l.arq, ms+1, ls.holdFn)
	ls.holdLane = nil
	l.holdNext, l.holdNextSet = ms+floor, true
	if ok && int32(next-l.holdNext) < 0 {
		l.holdNext = next
	}
}

// holdOne is HoldTimeouts' hold for segment sn of ls.holdLane at KCP time
// ls.holdMs.
func (ls *Lanes) holdOne(sn, ts uint32) (uint32, bool) {
	d, ok := ls.holdFor(ls.holdLane, sn, ts)
	if !ok {
		return 0, false
	}
	ls.heldTimeouts.Add(1)
	return ls.holdMs + uint32((d+time.Millisecond-1)/time.Millisecond), true
}

// holdFor reports how much longer segment sn of l, whose last copy KCP
// sent at KCP time ts, is expected to need to be acknowledged, if its
// timeout should be held.
func (ls *Lanes) holdFor(l *lane, sn, ts uint32) (time.Duration, bool) {
	s := l.sent.at(sn)
	if s == nil || !s.live {
		return 0, false
	}
	sent := ls.unpackTime(s.sent)
	if s.probed {
		// A tail-loss probe's copy went out on a timer of its own,
		// after KCP's copy waited a probe timeout unacknowledged: it
		// says nothing of a queue, but KCP's copy may still wait in
		// one (a probe timeout is a few smoothed RTTs, which a queue
		// growing at a rate dip outgrows), and KCP's timeout is for
		// that copy. So that copy is judged: its send order (kept:
		// trackSent) and its time, from KCP's timestamp (to KCP's
		// millisecond, which holdSlack allows for).
		sent = ls.now.Add(-time.Duration(int32(ls.kcpMs()-ts)) * time.Millisecond)
	}
	r := &ls.rack
	if int32(r.seq-s.seq) > 0 {
		return 0, false // a later copy arrived: this one is lost
	}
	if !r.flow.After(sent) {
		return 0, false // no acknowledgement since it was sent
	}
	if ls.now.Sub(sent) >= maxHold {
		return 0, false
	}
	// The round trip the newest acknowledged copy took, for this one too.
	if expect := sent.Add(r.rtt + r.rtt/4 + holdSlack); ls.now.Before(expect) {
		return expect.Sub(ls.now), true
	}
	// Longer already, but the queue ahead of it still drains: a queue
	// that grows (the link's rate fell) delays each copy more than the
	// one before. Judge again a little later. The queue drains as long
	// as acknowledgements came within a quarter of the round trip, or
	// within the longest the peer may hold one (Timing.MaxAckDelay: the
	// bench's bottleneck resent a flight still queued after ACK gaps of
	// 7.5-9.9 ms, against a quarter of a 21-23 ms round trip plus
	// holdSlack, 7.3-7.8 ms, with the peer's cap at 10 ms).
	if ls.now.Sub(r.flow) < ls.holdQuiet {
		return r.rtt/4 + holdSlack, true
	}
	return 0, false
}

// TimeoutRetrans is the data segments KCP's retransmission timeout
// resent so far (with a controller); safe from any goroutine.
func (ls *Lanes) TimeoutRetrans() uint64 { return ls.timeoutSegs.Load() }

// HeldTimeouts is the retransmission timeouts held so far; safe from
// any goroutine.
func (ls *Lanes) HeldTimeouts() uint64 { return ls.heldTimeouts.Load() }

// fullFlush reports whether typ flushes data (not ACKs only).
func fullFlush(typ kcp.FlushType) bool { return typ == kcp.IKCP_FLUSH_FULL }

// RepeatSegs is the data segments received so far that the lanes' KCPs
// already had: the copies the peer sent needlessly; safe from any
// goroutine.
func (ls *Lanes) RepeatSegs() uint64 { return ls.repeatSegs.Load() }
