package uxp

import (
	"time"

	"github.com/uxp-go/uxp/internal/arq"
	"github.com/uxp-go/uxp/internal/cc"
	"github.com/uxp-go/uxp/internal/wire"
)

// Congestion gating: where the session's controller and pacer limit what
// it sends. Everything here runs on the session's shard.
//
//   - Reliable data: new messages enter the lanes' KCPs (arq Enqueue and
//     Admit) only within a byte budget, the smaller of the window's room
//     (gateWindow − BytesInFlight: the controller's window, floored at 3
//     ms of its bandwidth estimate) and the pacer's tokens. KCP sends
//     what it was given at the flush that follows, so admission is the
//     gate; retransmissions and probes are never held back (KCP and the
//     probe timers send them) but count in flight, and retransmissions
//     take the pacer's tokens (laneIO.Output). A budget with room for less than the next message is raised
//     to that message, so a message larger than the window still goes
//     (one message of overshoot, like a TCP segment).
//   - When the pacer has no tokens the session's deadline in the shard's
//     timer heap includes the pacer's next send time (gateDeadline): no
//     ticker or goroutine per session. When the window is full the next
//     ACK (pump, after input) admits more.
//   - Datagrams (datagrams below): sent at once while the pacer's
//     priority bucket has room (half the rate, whatever debt other
//     packets left) and nothing older waits, else queued for a bounded
//     time; they go before reliable data, which gets the tokens they
//     leave and at least half the rate.
//   - FEC parity takes the pacer's tokens like the data it protects.
//   - The pacer runs at the controller's pacing rate raised by the share
//     of paced bytes the controller never sees acknowledged (datagrams,
//     parity: gatePacingRate).
//
// With CongestionNone nothing is gated (gated false): the budget is
// arq.NoLimit, datagrams go at once and ACKs are not thinned, exactly the
// behaviour before congestion control.

/* Implementation constants */
const (
	// dgramMaxWait bounds how long a datagram waits for the pacer: a
	// datagram that waited this long is dropped (counted in
	// DatagramStats.Dropped). Game and media datagrams older than this
	// are stale anyway.
	dgramMaxWait = 50 * time.Millisecond
	// dgramQueueMax bounds the datagrams waiting for the pacer; past it
	// the oldest latest-only datagram is dropped, else the oldest one.
	dgramQueueMax = 64
	// ccPublishInterval rate-limits the controller snapshot Stats reads
	// (each publish allocates one CongestionStats).
	ccPublishInterval = 20 * time.Millisecond
	// gateOffloadQuanta is the in-flight floor in pacer quanta
	// (gateWindow).
	gateOffloadQuanta = 3
	// extraInterval, extraMinBytes and extraMaxShare: how the share of
	// paced bytes the controller does not see is measured (extraShare):
	// 100 ms intervals, each with at least 4 KB paced, and at most four
	// times the controller's rate. (A cap of 2 let datagrams
	// and parity squeeze the reliable data below what the controller
	// measured once they were more than half the bytes; the estimate
	// then shrank with the data, and the share grew: a spiral that ended
	// with datagrams dropped after waiting 50 ms, TestDatagramsUnderLoss.)
	extraInterval = 100 * time.Millisecond
	extraMinBytes = 4 << 10
	extraMaxShare = 4
	// queueMinDelay is the least queueing delay queueing reads as a
	// queue: the shard's timer slot.
	queueMinDelay = time.Millisecond
	// segmentMinRTT is the least minimum RTT at which admission goes per
	// segment (setSendBudget); below it, and before the first RTT sample,
	// whole messages, as before. The least minimum the session ever saw
	// counts: behind a standing queue the controller's windowed minimum
	// can expire to the queue's delay. Below a millisecond the session's events
	// (timer slots of 1 ms, batches of ACKs read at once) are longer than
	// the round trip, the delivery-rate samples of segments sent a few
	// at a time span fractions of it and read as 130-890 Mbit/s behind
	// the bench's 20 Mbit/s tbf (a path of 50-250 µs without its queue),
	// and the window floor of 3 ms of that estimate let up to 720 KB into
	// its 125 KB queue: a quarter of the packets dropped. A 1 ms floor on
	// the samples' interval fixed that but cut loopback bulk from 171 to
	// 13 MB/s (no sample left at a 50 µs RTT).
	segmentMinRTT = time.Millisecond
)

// queuedDgram is a datagram waiting for the pacer.
type queuedDgram struct {
	kind    byte
	channel int
	data    []byte
	at      time.Time
}

// initGate sets up pacing, accounting and ACK thinning after the lanes
// exist (newConn).
func (c *Conn) initGate() {
	g := &c.cong
	// The lanes count kcp-go's 24-byte segment headers; the wire's
	// records are at least wire.RecordSaving bytes shorter per packet
	// (exactly that for a full-size data segment whose record carries
	// una and wnd; 4 bytes more for one that leaves them out, which the
	// controller then counts as sent: 0.3 % of a full packet, on the
	// safe side), so the controller's bytes stay wire bytes.
	c.arq.SetController(g.ctrl, wire.TransportOverhead-wire.RecordSaving)
	if !c.ep.set.congestion.gate {
		return
	}
	g.gated = true
	g.pacer = cc.NewPacer(c.mtu)
	// A held ACK waits at most KCP's interval, as long as KCP's own tick
	// once let it wait: KCP's retransmission timeout does not allow for
	// a longer delay, and with the full 25 ms on a queue-inflated RTT the
	// sender timed out spuriously (1 % of its segments against 0.2-0.35 %).
	g.ackPol = cc.AckPolicy{FullSize: c.mtu, MaxAckDelay: min(cc.DefaultMaxAckDelay, c.ep.set.kcpInterval)}
}

// admitBudget is the byte budget for new reliable data at now (arq
// Enqueue and Admit): arq.NoLimit when not gated.
func (c *Conn) admitBudget(now time.Time) int {
	g := &c.cong
	if !g.gated {
		return arq.NoLimit
	}
	g.pacer.SetRate(now, c.gatePacingRate())
	g.extraHeld = false
	room := c.gateWindow() - c.arq.BytesInFlight()
	if room <= 0 {
		return 0
	}
	avail := g.pacer.Available(now)
	if need := min(c.mtu, room); avail < need {
		g.extraHeld = avail+g.extraSince >= need
		return 0
	}
	return min(room, avail)
}

// setSendBudget sets the byte budget for the new segments of the current
// event's flushes (internal/arq sendlimit.go) to send, when gated. Limited
// per segment unless FEC groups the packets: an encoder's group is one
// flush's packets (a message of ten segments, one group of ten), and
// segments trickling out by the pacer's quantum split the groups, so that
// parity came too late to repair before KCP resent
// (TestFECRepairsWithoutRetransmission). Adaptive FEC at parity 0 sends
// plain packets and is limited. Nor on a path whose minimum RTT is under
// segmentMinRTT (see there).
func (c *Conn) setSendBudget(send int) {
	if !c.cong.gated {
		return
	}
	f, g := &c.fec, &c.cong
	if m := g.ctrl.Stats().MinRTT; m > 0 && (g.leastRTT == 0 || m < g.leastRTT) {
		g.leastRTT = m
	}
	c.arq.SetSendLimit(g.leastRTT >= segmentMinRTT && (f.enc == nil || f.params.adaptive && f.enc.Parity() == 0))
	c.arq.SetSendBudget(send)
}

// admission is the byte budget for whole messages into the lanes' KCPs
// given the send budget send (admitBudget): what it leaves beyond the
// segments already waiting unsent in the KCPs (internal/arq
// sendlimit.go), so that their send queues hold about one message.
func (c *Conn) admission(send int) int {
	if send < 0 {
		return send
	}
	return max(send-c.arq.UnsentBytes(), 0)
}

// gatePacingRate is the pacer's rate: the controller's pacing rate,
// raised by the share of the paced bytes the controller never sees
// acknowledged (datagrams, FEC parity: pacedExtra), as measured over the
// last interval (extraShare). The controller measures the path by the data
// it sees acknowledged: paced within its rate, the unacknowledged bytes
// took their share of every bandwidth sample, the next pacing rate was
// that much lower, and the estimate shrank round after round (10+3 FEC
// with datagrams over 10 % random loss: 860 → 270 kbit/s while the
// application offered 720, in TestDatagramsUnderLoss). Raised, everything
// together leaves at the rate the path delivered, and the data's share of
// it is what the controller measures: at a bottleneck its estimate
// settles at the data's share of the link, and the pacer at the link.
func (c *Conn) gatePacingRate() cc.Bandwidth {
	r := c.cong.ctrl.PacingRate()
	if x := c.cong.extra.share; x > 1 {
		r *= cc.Bandwidth(x)
	}
	return r
}

// gateWindow is the most the gate lets be in flight: the controller's
// window, but at least gateOffloadQuanta pacer quanta of the bandwidth the
// controller measured (each max(1 ms of it, 2 packets), the pacer's rule),
// after draft-ietf-ccwg-bbr's offload budget (BBRQuantizationBudget: 3 ×
// send_quantum). The session acts once per event (an ACK batch, a pacer
// wake, which the timer heap rounds to 1 ms slots), so it needs about that
// much in flight to keep its rate when the round trip is shorter than the
// time between its events. On loopback BBR's window (2 × BDP of a 20-50
// µs minimum RTT, 20-80 KB) held bulk to 150-280 MB/s against 415
// ungated. The floor is about 3 ms of the measured rate, so at most about
// 3 ms of queue at a bottleneck that runs at it; on a path whose round
// trip is above about 1.5 ms the controller's window (2 × BDP) is the
// larger anyway, and before the first bandwidth sample the floor (6
// packets) is below the initial window.
func (c *Conn) gateWindow() int {
	ctrl := c.cong.ctrl
	q := cc.Bandwidth(0)
	if bw := ctrl.Stats().Bandwidth; bw > 0 {
		q = bw * cc.Bandwidth(cc.PacerQuantumTime.Seconds())
	}
	q = min(max(q, cc.Bandwidth(cc.PacerMinQuantumPackets*c.mtu)), cc.PacerMaxQuantum)
	return max(ctrl.CongestionWindow(), gateOffloadQuanta*int(q))
}

// raise lifts a budget with room to at least next bytes (one message of
// overshoot).
func raise(budget, next int) int {
	if budget > 0 && budget < next {
		return next
	}
	return budget
}

// admit moves backlogged messages into the lanes within the budget and
// tells the controller when the session has less to send than it may.
func (c *Conn) admit(now time.Time, budget int) (admitted bool) {
	_, admitted = c.arq.Admit(now, raise(budget, c.arq.Head()))
	c.noteAppLimited()
	return admitted
}

// noteAppLimited marks the controller app-limited when nothing waits for
// admission although the window has room: the delivery rate then says
// nothing about the path.
//
// Data that waits only because datagrams and FEC parity took the pacer's
// tokens (extraHeld: without the bytes they were charged since the last
// data packet the admission would have gone) is limited by the sender's
// own traffic, not by the path, and counts as app-limited too. The
// controller sees only the data's delivery rate: taken as a path
// measurement, such a sample fell with every burst of parity (a partial
// FEC group's parity is three shards of its largest packet), lowered the
// estimate and with it the pacer, which left less room for the data and
// more of it waiting: a spiral that ended with datagrams dropped after
// dgramMaxWait (TestDatagramsUnderLoss with FEC, a delivery rate of 17
// KB/s measured against a model of 130 and an application sending 90).
func (c *Conn) noteAppLimited() {
	g := &c.cong
	if g.ctrl == nil {
		return
	}
	in := c.arq.BytesInFlight()
	if c.arq.Head() != 0 || c.arq.Unsent() > 0 {
		if g.gated && g.extraHeld {
			g.ctrl.OnAppLimited(in)
		}
		return
	}
	if g.gated && in < c.gateWindow() || !g.gated && g.ctrl.CanSend(in) {
		g.ctrl.OnAppLimited(in)
	}
}

// paced charges the pacer with a data-bearing packet of n bytes of frame
// (the wire overhead is added here) that the controller accounts for (the
// lanes' data segments).
func (c *Conn) paced(n int) {
	if g := &c.cong; g.gated {
		// Charge, not OnSent: KCP's retransmissions and the probes go
		// out untimed, and their whole burst must be paid for.
		g.pacer.Charge(c.shard.now, n+wire.TransportOverhead)
		g.extra.tracked += int64(n + wire.TransportOverhead)
		g.extraSince = 0
	}
}

// pacedExtra is paced for a packet the controller never sees acknowledged
// (a datagram, FEC parity); they raise the pacer's rate (gatePacingRate).
// A datagram (prio) drains the pacer's priority bucket too, the one it
// waits for (sendDatagramGated).
func (c *Conn) pacedExtra(n int, prio bool) {
	if g := &c.cong; g.gated {
		if prio {
			g.pacer.ChargePriority(c.shard.now, n+wire.TransportOverhead)
		} else {
			g.pacer.Charge(c.shard.now, n+wire.TransportOverhead)
		}
		g.extra.untracked += int64(n + wire.TransportOverhead)
		g.extraSince += n + wire.TransportOverhead
	}
}

// extraShare measures the paced bytes per byte the controller accounts
// for (gatePacingRate), over intervals of extraInterval in which at least
// extraMinBytes were paced; an interval with less keeps the last value.
// The ratio is capped at extraMaxShare. An interval without tracked data
// keeps the last value too: the controller, which has no sample then, has
// nothing for it to scale (a session that sends datagrams only).
//
// The interval needs its bytes in total, not in tracked data: data that
// the pacer starved has few bytes, and with 4 KB of tracked data required
// an interval where datagrams and parity took the tokens kept the last
// value, 0 (none) before the first: the pacer ran at the controller's
// rate, the data's own (40 kB/s), while parity and datagrams, three
// quarters of the bytes, took most of it; the data's delivery rate stayed
// at what the pacer left it, the next interval again had too little data
// to measure, and the session sent 10 of the 90 kB/s of messages it was
// given (TestDatagramsUnderLoss with FEC: 225 of 600 messages delivered 3
// s after the last, in 6 of 60 runs).
type extraShare struct {
	tracked, untracked int64 // bytes paced in the current interval
	at                 time.Time
	share              float64 // (tracked+untracked)/tracked; 0 before the first interval
}

// update closes the interval at now if it is over.
func (x *extraShare) update(now time.Time) {
	if now.Sub(x.at) < extraInterval {
		return
	}
	x.at = now
	if total := x.tracked + x.untracked; total >= extraMinBytes && x.tracked > 0 {
		x.share = min(float64(total)/float64(x.tracked), extraMaxShare)
	}
	x.tracked, x.untracked = 0, 0
}

// congestionTick follows the controller after its inputs of an event: the
// pacer's rate, the published snapshot (rate-limited), the bandwidth
// report.
func (c *Conn) congestionTick(now time.Time) {
	g := &c.cong
	if g.ctrl == nil {
		return
	}
	if g.gated {
		g.extra.update(now)
		g.pacer.SetRate(now, c.gatePacingRate())
	}
	if !c.fec.params.adaptive {
		c.lossFromAcks(now)
	}
	if now.Sub(g.publishedAt) >= ccPublishInterval {
		g.publishedAt = now
		c.publishCongestion()
		c.reportBandwidth(now)
	}
}

// lossFromAcks sets LossOut, without adaptive FEC (whose peer reports
// it), from the lanes' acknowledgements: the data segments KCP had to send
// again (declared lost) per data segment sent, over intervals of
// lossReportInterval that sent any.
func (c *Conn) lossFromAcks(now time.Time) {
	g := &c.cong
	if now.Sub(g.lossAt) < lossReportInterval {
		return
	}
	g.lossAt = now
	lost, sent := c.arq.Lost()
	dl, ds := lost-g.lossLost, sent-g.lossSent
	g.lossLost, g.lossSent = lost, sent
	if ds == 0 {
		return
	}
	c.lossOut.Store(int64(min(float64(dl)/float64(ds), 1) * 10000))
}

// gateDeadline is when the gate next needs the session's timer: while
// messages wait and the window has room, the pacer's next send time (the
// pacer, not the window, holds them: no ACK may come to admit them); while
// datagrams wait, the pacer's time for the oldest and its expiry. A
// window that is full waits for the ACKs (pump admits after input).
func (c *Conn) gateDeadline(now time.Time) time.Time {
	g := &c.cong
	if !g.gated {
		return time.Time{}
	}
	var d time.Time
	if (c.arq.Head() != 0 && c.arq.WindowOpen() || c.arq.Unsent() > 0) && c.arq.BytesInFlight() < c.gateWindow() {
		d = g.pacer.NextSendTime(now, c.mtu)
	}
	if len(g.dq) > 0 {
		n := len(g.dq[0].data) + wire.TransportOverhead
		d = earlier(d, now.Add(g.pacer.TimeUntilSendPriority(now, n)))
		if !c.dataWaits() {
			d = earlier(d, g.pacer.NextSendTime(now, n))
		}
		d = earlier(d, g.dq[0].at.Add(dgramMaxWait))
	}
	return d
}

// Datagrams under the gate: a datagram goes at once while the pacer has
// tokens for it (dgramMayGo) and no older datagram waits; otherwise it waits in a
// queue of at most dgramQueueMax datagrams, for at most dgramMaxWait, and
// the queue drains, in order (before reliable data, which can wait), as
// tokens come back. When the queue is full the oldest latest-only
// datagram is dropped (a newer one of its channel follows), else the
// oldest. Every drop counts in DatagramStats.Dropped.
// Bounded waiting rather than dropping at once: a pacer's quantum is a
// millisecond, so a burst of datagrams above it only needs a few
// milliseconds; a queue that stays full means the application sends
// faster than the path, and then the stale ones go first.

// sendDatagramGated sends or queues one datagram (sendDatagram).
func (c *Conn) sendDatagramGated(kind byte, channel int, msg []byte) {
	g := &c.cong
	now := c.shard.now
	if len(g.dq) == 0 {
		if ok, prio := c.dgramMayGo(now, len(msg)); ok {
			c.emitDatagram(kind, channel, msg, prio)
			return
		}
	}
	if len(g.dq) >= dgramQueueMax {
		drop := 0
		for i := range g.dq {
			if g.dq[i].kind == pendLatest {
				drop = i
				break
			}
		}
		c.dropQueuedDgram(drop)
	}
	g.dq = append(g.dq, queuedDgram{kind: kind, channel: channel, data: append([]byte(nil), msg...), at: now})
}

// dgramMayGo reports whether a datagram of n bytes may leave at now, and
// whether on the pacer's priority bucket (then charged to it: prio). A
// datagram takes the priority bucket, which the debt other packets left
// does not delay (cc.Pacer); while no reliable data waits for the pacer
// (dataWaits) it may also take the shared tokens, as the data would.
func (c *Conn) dgramMayGo(now time.Time, n int) (ok, prio bool) {
	p := c.cong.pacer
	if p.TimeUntilSendPriority(now, n+wire.TransportOverhead) == 0 {
		return true, true
	}
	return !c.dataWaits() && p.TimeUntilSend(now, n+wire.TransportOverhead) == 0, false
}

// dataWaits reports whether reliable data waits to be admitted or sent.
func (c *Conn) dataWaits() bool {
	return c.arq.Head() != 0 || c.arq.Unsent() > 0
}

func (c *Conn) dropQueuedDgram(i int) {
	g := &c.cong
	g.dq = append(g.dq[:i], g.dq[i+1:]...)
	c.dgrams.dropped.Add(1)
}

// drainDatagrams sends the queued datagrams the pacer allows at now and
// drops those that waited too long.
func (c *Conn) drainDatagrams(now time.Time) {
	g := &c.cong
	for len(g.dq) > 0 {
		q := g.dq[0]
		if now.Sub(q.at) >= dgramMaxWait {
			c.dropQueuedDgram(0)
			continue
		}
		ok, prio := c.dgramMayGo(now, len(q.data))
		if !ok {
			break
		}
		g.dq[0] = queuedDgram{}
		g.dq = g.dq[1:]
		c.emitDatagram(q.kind, q.channel, q.data, prio)
	}
	if len(g.dq) == 0 {
		g.dq = nil
	}
}

// sessionAcks is the session's arq.AckPolicy. With FEC, ACKs are held
// while the decoder holds a group that may still fill a hole they would
// report (so that a repair does not race a fast retransmission). Under a
// congestion controller they are also thinned (cc.AckPolicy): at most one
// ACK per two full-size segments or the ACK delay (RTT/4, at most 25 ms),
// at once for a segment out of order or shorter than full size (the tail
// of a message or burst). Without a controller (CongestionNone) every
// data segment is acknowledged at the end of its event, as before.
type sessionAcks Conn

// fecHolds reports whether the FEC decoder holds the ACKs back at now:
// while it holds a group, and, under a controller, only while the lanes
// miss a segment (arq.Lanes.Gap), the hole the group may still fill, and
// for at most fecHoldMax after the first of the ACKs owed (ackOwedAt).
// Held in order too, every ACK waited for its group (up to about 10 ms at
// 60 packets/s), the controller read every round as a standing queue and
// the random loss as congestion, and its rate collapsed to a third of
// what the application offered (TestDatagramsUnderLoss with FEC: 71 of
// 100 runs dropped datagrams; 0 of 100 holding only over a hole).
//
// Unbounded, the hold over a hole lasted as long as the hole: under a
// steady stream the decoder always holds some group, and a segment lost
// with its group beyond repair (or its retransmission lost) left the
// hole open until KCP's retransmission timeout, which, with no ACK
// coming back, backed off: a receiver sent 30 ACKs in 8 s, the sender
// went silent for 2.6 s, and 154 of 600 messages had arrived 3 s after
// the last was written (TestDatagramsUnderLoss with FEC, 1 run in 10).
func (a *sessionAcks) fecHolds(now time.Time) bool {
	if a.fec.dec == nil || a.fec.dec.Groups() == 0 {
		return false
	}
	if !a.cong.gated {
		return true
	}
	return a.arq.Gap() && (a.cong.ackOwedAt.IsZero() || now.Before(a.fecHoldEnd()))
}

// fecHoldEnd is when a hold over a hole ends (fecHolds): fecHoldMax after
// the first ACK owed.
func (a *sessionAcks) fecHoldEnd() time.Time {
	return a.cong.ackOwedAt.Add((*Conn)(a).fecHoldMax())
}

// fecHoldMax bounds a hold over a hole under a controller (fecHolds): the
// FEC group delay (the longest a group's parity follows its first data
// shard; the default where the delay is negative) plus the ACK delay the
// sender allows for anyway (peerAckDelay).
func (c *Conn) fecHoldMax() time.Duration {
	d := c.ep.set.fecGroupDelay
	if d <= 0 {
		d = defaultFECGroupDelay
	}
	return d + c.cong.ackPol.AckDelay()
}

func (a *sessionAcks) OnData(now time.Time, _ int, _ int, full, outOfOrder bool) {
	g := &a.cong
	if !g.gated {
		return
	}
	if g.ackOwedAt.IsZero() {
		g.ackOwedAt = now
	}
	g.ackPol.SetRTT((*Conn)(a).ackRTT())
	if g.ackPol.OnData(now, full, outOfOrder, false) {
		g.ackDue = true
	}
}

func (a *sessionAcks) AckNow(now time.Time) bool {
	if a.fecHolds(now) {
		return false
	}
	g := &a.cong
	if !g.gated || g.ackDue {
		return true
	}
	d := g.ackPol.Deadline()
	return !d.IsZero() && !now.Before(d)
}

// Deadline is the ACK policy's deadline, or, while a hold over a hole
// (fecHolds) lasts past it, the hold's end.
func (a *sessionAcks) Deadline() time.Time {
	g := &a.cong
	if !g.gated {
		return time.Time{}
	}
	d := g.ackPol.Deadline()
	if !d.IsZero() && !g.ackOwedAt.IsZero() && a.fec.dec != nil && a.fec.dec.Groups() > 0 && a.arq.Gap() {
		d = later(d, a.fecHoldEnd())
	}
	return d
}

func (a *sessionAcks) OnAckSent(now time.Time) {
	g := &a.cong
	if g.gated {
		g.ackPol.OnAckSent()
		g.ackDue = false
		g.ackOwedAt = time.Time{}
	}
}

// ackRTT is the RTT the ACK delay is a fraction of: the data round trips
// this side measures, or, on a side that sends no data of its own (a pure
// receiver), the heartbeat's estimate, which the handshake's round trip
// starts. (With the data RTT alone a pure receiver had no RTT and held
// ACKs for the full 25 ms MaxAckDelay, while the sender allowed for
// RTT/4 (peerAckDelay): on a 20 ms path KCP's retransmission timeout
// fired spuriously for 5 % of the segments, and new data waited behind
// them.)
func (c *Conn) ackRTT() time.Duration {
	if c.dataRTT.samples > 0 {
		return c.dataRTT.srtt
	}
	return c.hb.srtt
}

// queueing reports whether the controller sees a queue building on the
// path, its congestion signal: the smoothed RTT more than a quarter above
// the minimum (BBR's own test for a queue in a round). Loss while it
// holds is the queue overflowing, not random loss, and adaptive FEC does
// not add parity for it (takeLossReport). Only under a gating controller.
// The queue must also be at least queueMinDelay: on a path of a few
// hundred microseconds a quarter of the minimum RTT is within the noise of
// timer slots and scheduling, and read as a queue it kept adaptive FEC at
// parity 0 under plain random loss.
func (c *Conn) queueing() bool {
	if !c.cong.gated {
		return false
	}
	st := c.cong.ctrl.Stats()
	return st.MinRTT > 0 && st.SmoothedRTT > st.MinRTT+max(st.MinRTT/4, queueMinDelay)
}

// peerAckDelay is what the peer's ACK thinning may add to a round trip,
// which the probe timeout allows for: the ACK delay (cc.AckPolicy) at the
// data RTT; zero without a controller.
func (c *Conn) peerAckDelay(srtt time.Duration) time.Duration {
	if !c.cong.gated {
		return 0
	}
	p := cc.AckPolicy{}
	p.SetRTT(srtt)
	return p.AckDelay()
}
