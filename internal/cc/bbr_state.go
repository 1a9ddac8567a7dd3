package cc

import (
	"math"
	"time"
)

// advanceState runs the state machine after the model was updated.
func (b *BBRController) advanceState(now time.Time, inflight int, roundStart bool, rs rateSample) {
	switch b.state {
	case bbrStartup:
		if b.filledPipe {
			b.state = bbrDrain
			b.pacingGain = bbrDrainPacingGain
			b.cwndGain = bbrStartupCwndGain
		}
	case bbrProbeBW:
		b.advanceProbeBW(inflight, roundStart, rs)
	}
	if b.state == bbrDrain && inflight <= b.bdp(1) {
		b.startDown()
	}
	b.checkProbeRTT(now, inflight, roundStart)
}

// startDown begins a ProbeBW cycle. It also advances the max-bandwidth
// filter, so the filter spans the current and the previous cycle, counting
// only cycles that fed it a sample: a cycle in which every delivery-rate
// sample was application-limited (and below the estimate, so ignored)
// measured nothing, and does not push the previous cycle's maximum out.
// Advanced regardless, two such cycles in a row, common for a session that
// sends less than the path carries (a game's messages and datagrams),
// emptied the filter: the next app-limited sample, a few KB/s, became the
// whole model, the pacer fell below what the application sent, and its
// datagrams were dropped after waiting dgramMaxWait (TestDatagramsUnderLoss
// with FEC). Like the draft's windowed max filter, which changes only when
// a sample arrives, it keeps its maximum through cycles that measured
// nothing.
func (b *BBRController) startDown() {
	b.state = bbrProbeBW
	b.phase = phaseDown
	b.phaseRounds = 0
	b.pacingGain = bbrDownPacingGain
	b.cwndGain = bbrCwndGain
	if b.bwHi[1] > 0 {
		b.bwHi[0], b.bwHi[1] = b.bwHi[1], 0
	}
	b.downQueued = 0
	b.cruiseFor = bbrCruiseRoundsMin + b.rng.IntN(bbrCruiseRoundsMax-bbrCruiseRoundsMin)
}

func (b *BBRController) setPhase(p bbrPhase, pacingGain, cwndGain float64) {
	b.phase = p
	b.phaseRounds = 0
	b.pacingGain = pacingGain
	b.cwndGain = cwndGain
}

func (b *BBRController) advanceProbeBW(inflight int, roundStart bool, rs rateSample) {
	switch b.phase {
	case phaseDown:
		// Stay until the queue this flow built is gone, and inflight
		// has left the headroom below inflight_hi for other flows.
		if inflight <= b.bdp(1) && (b.inflightHi == 0 || inflight <= b.headroom()) {
			b.setPhase(phaseCruise, 1, bbrCwndGain)
		} else if b.downQueued >= b.cruiseFor && b.bdp(1) >= minWindowPackets*b.mss {
			// Time to probe, as the draft's DOWN leaves on its probe
			// timer, once the queue stood through as many rounds of
			// DOWN as the cycle cruises: a queue that outlives DOWN is
			// another flow's (a loss-based one keeps it full), or the
			// model's bandwidth is above the path, so that even 0.75
			// of it keeps a queue of its own (after a rate drop that
			// the congested rounds cut by 0.7 at a time, the
			// cwnd-bound queue then losing nothing more). Either way
			// waiting in DOWN does not end it, and never advanced the
			// max filter: the cycle goes on, and the next DOWN ages
			// the stale maximum out. A DOWN whose queue emptied stays.
			// So does one on a path whose BDP is under 4 packets (a
			// minimum RTT of a fraction of a packet's time, as on the
			// bench's veths): there inflight never falls to the BDP,
			// DOWN is where such a flow waits, and leaving it on a
			// standing queue cycled through UP, whose RTT rise fired
			// KCP's timeout spuriously for 4-6 % of the packets
			// (bench bottleneck: goodput 0.94x).
			b.setPhase(phaseRefill, 1, bbrCwndGain)
		}
	case phaseCruise:
		if roundStart && b.inflightHi > 0 && inflight+rs.ackedBytes >= b.headroom()-b.mss {
			// Additive increase while bounded by inflight_hi: one
			// packet per round, as Reno's congestion avoidance.
			b.inflightHi += b.mss
		}
		if b.phaseRounds >= b.cruiseFor {
			// REFILL: send at the estimate for a round, so UP starts
			// from a full pipe and its losses are its own.
			b.setPhase(phaseRefill, 1, bbrCwndGain)
		}
	case phaseRefill:
		if b.phaseRounds >= 1 {
			b.upCount = 1
			b.setPhase(phaseUp, bbrUpPacingGain, bbrUpCwndGain)
		}
	case phaseUp:
		hiLimited := b.inflightHi > 0 && inflight+rs.ackedBytes >= b.inflightHi-b.mss
		if roundStart && hiLimited {
			// Limited by inflight_hi without congestion: raise it by
			// 1, 2, 4... packets per round.
			b.inflightHi += b.upCount * b.mss
			b.upCount = min(2*b.upCount, 1<<10)
		}
		// UP ends once inflight reached 1.25 BDP, unless inflight_hi is
		// what holds it back (then it keeps growing until a congested
		// round sends us to DOWN), or after bbrMaxUpRounds.
		if b.phaseRounds >= 1 && inflight >= b.bdp(bbrUpPacingGain) && !hiLimited || b.phaseRounds >= bbrMaxUpRounds {
			b.startDown()
		}
	}
}

// checkProbeRTT enters ProbeRTT when the minimum RTT has not been
// refreshed for bbrProbeRTTInterval, and leaves it after 200 ms and a
// round at the reduced window.
func (b *BBRController) checkProbeRTT(now time.Time, inflight int, roundStart bool) {
	if b.state != bbrProbeRTT && b.probeRTTExpired {
		b.priorCw = b.cwnd
		b.state = bbrProbeRTT
		b.pacingGain = 1
		b.cwndGain = bbrProbeRTTCwndGain
		b.probeRTTDone = time.Time{}
		b.probeRTTRoundDone = false
	}
	if b.state != bbrProbeRTT {
		return
	}
	if b.probeRTTDone.IsZero() {
		if inflight <= b.probeRTTCwnd() {
			b.probeRTTDone = now.Add(bbrProbeRTTDuration)
			b.probeRTTRoundDone = false
			b.nextRound = b.s.delivered
		}
		return
	}
	if roundStart {
		b.probeRTTRoundDone = true
	}
	if b.probeRTTRoundDone && !now.Before(b.probeRTTDone) {
		b.probeMinStamp = now
		b.cwnd = max(b.cwnd, b.priorCw)
		if b.filledPipe {
			b.startDown()
			b.setPhase(phaseCruise, 1, bbrCwndGain)
		} else {
			b.enterStartup()
		}
	}
}

// headroom is inflight_hi less 15 %, the cwnd bound outside UP.
func (b *BBRController) headroom() int {
	return int((1 - bbrHeadroom) * float64(b.inflightHi))
}

func (b *BBRController) probeRTTCwnd() int {
	return max(b.bdp(bbrProbeRTTCwndGain), minWindowPackets*b.mss)
}

// setPacing is the draft's BBRSetPacingRate: in Startup the rate only
// grows, so an early low sample does not slow the ramp.
func (b *BBRController) setPacing() {
	if !b.pacingFromRTT && b.rtt.smoothed > 0 {
		// The draft initialises the rate from SRTT when one exists;
		// ours arrives with the first ACK (or the handshake's RTT).
		b.pacingFromRTT = true
		b.pacing = b.initialPacing()
	}
	bw := b.bw()
	if bw == 0 || b.minRTT == 0 {
		b.pacing = b.initialPacing()
		return
	}
	// The model's bandwidth is a delivery rate: what arrived. On a path
	// with random loss p the sender must send bw/(1-p) for bw to arrive
	// (the retransmissions), so the rate is scaled by the random-loss
	// baseline (at most 2x); else pacing at the delivery rate starved the
	// retransmissions and the model fell with every cycle (found wiring
	// the controller into uxp's sessions at 10 % loss).
	lossScale := 1 / (1 - min(b.baseline, 0.5))
	r := b.cfg.clamp(Bandwidth(b.pacingGain*(1-bbrPacingMargin)*lossScale) * bw)
	if b.filledPipe || r > b.pacing {
		b.pacing = r
	}
}

// setCwnd is the draft's BBRSetCwnd without the ACK-aggregation term.
func (b *BBRController) setCwnd(acked, inflight int) {
	target := b.bdp(b.cwndGain) + bbrQuantumPackets*b.mss
	switch {
	case b.filledPipe:
		b.cwnd = min(b.cwnd+acked, target)
	case b.cwnd < target || b.s.delivered < int64(b.cfg.initialWindow()):
		b.cwnd += acked
	}
	minCwnd := minWindowPackets * b.mss
	if b.inflightHi > 0 {
		limit := b.inflightHi
		if b.state == bbrProbeBW && b.phase != phaseUp {
			limit = b.headroom()
		}
		b.cwnd = min(b.cwnd, max(limit, minCwnd))
	}
	if b.state == bbrProbeRTT {
		b.cwnd = min(b.cwnd, b.probeRTTCwnd())
	}
	if b.cfg.MinBandwidth > 0 && b.minRTT > 0 {
		minCwnd = max(minCwnd, 2*b.cfg.MinBandwidth.BytesIn(b.minRTT))
	}
	b.cwnd = max(b.cwnd, minCwnd)
}

// CanSend implements [Controller].
func (b *BBRController) CanSend(inflight int) bool { return inflight < b.cwnd }

// CongestionWindow implements [Controller].
func (b *BBRController) CongestionWindow() int { return b.cwnd }

// PacingRate implements [Controller].
func (b *BBRController) PacingRate() Bandwidth { return b.pacing }

// State returns the state name used in [Stats].
func (b *BBRController) State() string {
	switch b.state {
	case bbrStartup:
		return "startup"
	case bbrDrain:
		return "drain"
	case bbrProbeRTT:
		return "probe_rtt"
	}
	switch b.phase {
	case phaseDown:
		return "probe_bw:down"
	case phaseCruise:
		return "probe_bw:cruise"
	case phaseRefill:
		return "probe_bw:refill"
	default:
		return "probe_bw:up"
	}
}

// Stats implements [Controller].
func (b *BBRController) Stats() Stats {
	bw := b.bw()
	if math.IsInf(float64(bw), 1) {
		bw = 0
	}
	return Stats{
		Algorithm:        string(BBR),
		State:            b.State(),
		Bandwidth:        bw,
		PacingRate:       b.pacing,
		CongestionWindow: b.cwnd,
		MinRTT:           b.minRTT,
		SmoothedRTT:      b.rtt.smoothed,
		Delivered:        b.s.delivered,
		Lost:             b.s.lost,
		Rounds:           b.rounds,
	}
}
