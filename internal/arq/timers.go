package arq

import (
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Timers runs the lanes' clocks at now: expiries, admission, tail-loss
// and window probes, KCP's retransmissions and delayed ACKs, and the ACK
// policy's deadline. A lane flushes only when it has work due
// (internal/kcpx SendWork): KCP's interval tick while ACKs are owed or
// segments wait for window, else only once its earliest retransmission
// time has come. So the cost of a wake is the segments it sends plus one
// pass over those in flight. budget is Admit's.
func (ls *Lanes) Timers(now time.Time, budget int) {
	ls.Expire(now)
	if _, ok := ls.Admit(now, budget); ok || ls.CanSendNew() {
		ls.Flush(now)
	}
	if d := ls.acks.Deadline(); !d.IsZero() && !now.Before(d) && ls.acksOwed() {
		ls.flushAcks(now)
	}
	ls.begin(now)
	held := ls.heldOnce(now)
	acked := false
	for _, l := range ls.byPrio {
		ls.probeTimer(l, now)
		ls.wndProbeTimer(l, now)
		if l.arq == nil {
			continue
		}
		if _, _, tick := ls.sendWork(l); (l.ackPending && !held() || tick) && ls.sh.KCP.CheckDue(l.arq) {
			// Update flushes everything on KCP's interval tick. Check may
			// also be due for a retransmission before that tick, when
			// Update does nothing: that is handled below. CheckDue, not
			// due: Check answers on KCP's clock, which may be ahead of
			// Ms(now) (kcpx CheckDue).
			ls.update(l)
			if l.ackPending && ls.flushKCP(l, kcp.IKCP_FLUSH_ACKONLY) {
				l.ackPending = false
				acked = true
			}
		}
		if at, has, _ := ls.sendWork(l); has && ls.due(at) {
			// A retransmission timeout has come: flush now rather than
			// wait for KCP's tick (which the lane no longer runs while
			// it only waits for ACKs).
			if ls.flushKCP(l, kcp.IKCP_FLUSH_FULL) {
				acked = acked || l.ackPending
				l.ackPending = false
			}
			ls.out.Event(EvTimerFlush)
		}
	}
	if acked {
		ls.acks.OnAckSent(now)
	}
}

// ackHeld reports whether the ACK policy holds the owed ACKs at now until
// a deadline of its own (thinning under a congestion controller): then
// KCP's interval tick does not send them either. A thinned ACK sent on
// the tick acknowledged one full-size segment up to a segment's time
// after it arrived, and broke the pairs: the sender's delivery-rate
// samples that began at such a late ACK and ended at a prompt one had
// their interval cut by up to a packet's time at the bottleneck, and the
// bandwidth estimate, a maximum over them, ran 5-9 % above the link
// (TestBottleneckStepDrain). A policy without a deadline of its own
// (Immediate; FEC holding ACKs without a controller) leaves them to the
// tick, as before.
func (ls *Lanes) ackHeld(now time.Time) bool {
	return !ls.acks.Deadline().IsZero() && !ls.acks.AckNow(now)
}

// heldOnce returns ackHeld(now), asked once and only if called: most
// wakes have no ACK owed.
func (ls *Lanes) heldOnce(now time.Time) func() bool {
	asked, held := false, false
	return func() bool {
		if !asked {
			asked, held = true, ls.ackHeld(now)
		}
		return held
	}
}

// due reports whether KCP time ms has come at the current call's time.
// For fixed times (a segment's retransmission time): one that falls due
// after the event began waits for the next wake (Deadline: a
// millisecond). Not for Check's answer, which follows KCP's own clock
// when work is due (kcpx CheckDue).
func (ls *Lanes) due(ms uint32) bool { return int32(ms-ls.kcpMs()) <= 0 }

// Deadline is the earliest lane timer at now: a KCP clock, an expiry, a
// probe, the ACK policy's deadline while ACKs are owed, or a memory trim.
// While a lane only waits for ACKs, its KCP clock is the earliest
// retransmission time of its segments in flight, not KCP's interval tick
// (internal/kcpx SendWork). It also runs the lanes' memory trimming.
func (ls *Lanes) Deadline(now time.Time) time.Time {
	ls.begin(now)
	var d time.Time
	kcpAt := func(ms uint32) time.Time {
		// Rounded up: KCP's milliseconds and now's need not share a
		// phase (kcpx.Ms).
		wait := time.Duration(int32(ms-ls.kcpMs())) * time.Millisecond
		return now.Add(max(wait, time.Millisecond))
	}
	var margin time.Duration
	marginRead := false
	owed := false
	held := ls.heldOnce(now)
	for _, l := range ls.lanes {
		owed = owed || l.ackPending
		if l.arq != nil {
			switch at, has, tick := ls.sendWork(l); {
			case l.ackPending && !held() || tick:
				d = earlier(d, kcpAt(l.arq.Check()))
			case has:
				d = earlier(d, kcpAt(at))
			}
		}
		if !l.minExpiry.IsZero() {
			if !marginRead {
				margin, marginRead = expiryMargin(ls.out.Timing()), true
			}
			d = earlier(d, l.minExpiry.Add(-margin))
		}
		d = earlier(d, l.probe.at)
		d = earlier(d, l.wnd.at)
		d = earlier(d, ls.trimDeadline(l, now))
	}
	if owed {
		d = earlier(d, ls.acks.Deadline())
	}
	return d
}

// earlier returns the earlier of two times, a zero time meaning none.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// sendWork is the shard factory's SendWork for a lane's KCP, or the old
// tick while anything is unacknowledged: under Config.TickAlways, and on
// a lane with deadline messages in flight.
func (ls *Lanes) sendWork(l *lane) (at uint32, has, tick bool) {
	if ls.cfg.TickAlways || !l.minExpiry.IsZero() || l.lapsed > 0 {
		// A lane with deadline messages in flight keeps KCP's interval
		// tick: a lost segment of such a message must be resent (as a
		// skip marker once lapsed) within the deadline, and waking only
		// at the segment's own RTO let a frame behind a lost one wait
		// past its deadline when both copies of its skip marker were
		// lost too (TestDeadlineFrames, at some phases of KCP's clock).
		// Lanes without deadlines, the bulk of a server's sessions, wake
		// at their real retransmission time.
		return 0, false, l.arq.WaitSnd() > 0
	}
	if ls.limit {
		// Segments waiting unsent in the send queue are the gate's to
		// release (sendlimit.go): the session wakes for them at the
		// pacer's time or the next ACK, not on KCP's interval tick.
		return ls.sh.KCP.SendWorkSent(l.arq)
	}
	return ls.sh.KCP.SendWork(l.arq)
}

// Stats is a snapshot of one lane's counters.
type Stats struct {
	MessagesSent, MessagesReceived, Retransmissions, Expired, Skipped uint64
	QueuedBytes                                                       int
}

// Stats snapshots lane's counters; safe from any goroutine.
func (ls *Lanes) Stats(lane int) Stats {
	c := &ls.lanes[lane].ctr
	return Stats{
		MessagesSent:     c.MsgsOut.Load(),
		MessagesReceived: c.MsgsIn.Load(),
		Retransmissions:  c.Retrans.Load(),
		Expired:          c.Expired.Load(),
		Skipped:          c.Skipped.Load(),
		QueuedBytes:      int(c.Queued.Load()),
	}
}
