package cc

import (
	"math"
	"time"
)

/* Specification constants (RFC 9438) */

const (
	cubicC    = 0.4 // C, in MSS per second cubed
	cubicBeta = 0.7 // β_cubic, the multiplicative decrease
	// cubicAlpha is α_cubic = 3(1-β)/(1+β), the Reno-friendly growth in
	// MSS per RTT.
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

/* Implementation constants */

const (
	// cubicSlowStartPacingGain and cubicPacingGain scale cwnd/srtt into
	// the pacing rate, as Linux's sch_fq pacing does (200 % in slow start,
	// 120 % in congestion avoidance).
	cubicSlowStartPacingGain = 2.0
	cubicPacingGain          = 1.2
)

// CubicController is RFC 9438 CUBIC over bytes, with Reno-friendly region
// and fast convergence, one window reduction per round of losses (the
// recovery period ends with the first packet sent after the reduction), and
// pacing at 1.2 cwnd/srtt (2 cwnd/srtt in slow start).
//
// It is here for comparison: it reads every loss as congestion, so random
// loss collapses its rate, which is exactly what uxp's default controller
// must not do.
//
// Not implemented: HyStart++, spurious-loss undo, and the RTO-specific
// (persistent congestion) collapse to the minimum window; a timer loss is
// treated like any other loss event.
type CubicController struct {
	cfg      Config
	mss      float64
	s        sampler
	rtt      rttStats
	cwnd     float64 // bytes
	ssthresh float64 // bytes; +Inf until the first loss

	wMax       float64   // window before the last reduction, bytes
	k          float64   // seconds until the cubic reaches wMax again
	epochStart time.Time // start of the current avoidance epoch; zero: none
	wEst       float64   // the Reno-friendly estimate, bytes
	recovery   time.Time // packets sent before this belong to the last loss event
	inRecovery bool
	rate       Bandwidth // smoothed delivery rate, for Stats
}

var _ Controller = (*CubicController)(nil)

// NewCubic returns a CUBIC controller.
func NewCubic(cfg Config) *CubicController {
	c := &CubicController{cfg: cfg, mss: float64(cfg.mss())}
	c.cwnd = float64(cfg.initialWindow())
	c.ssthresh = math.Inf(1)
	return c
}

// OnPacketSent implements [Controller].
func (c *CubicController) OnPacketSent(now time.Time, bytes, inflight int) PacketState {
	return c.s.onSent(now, bytes, inflight)
}

// OnAppLimited implements [Controller].
func (c *CubicController) OnAppLimited(inflight int) { c.s.onAppLimited(inflight) }

// OnAck implements [Controller].
func (c *CubicController) OnAck(now time.Time, ev AckEvent) {
	rs := c.s.onAck(now, ev.Acked, ev.Lost, c.rtt.min)
	c.rtt.update(rttOf(ev, rs))
	if rs.ok && !rs.appLimited {
		// An EWMA (gain 1/8) of the delivery rate: Cubic has no model,
		// this only feeds Stats.
		if c.rate == 0 {
			c.rate = rs.rate
		} else {
			c.rate += (rs.rate - c.rate) / 8
		}
	}
	c.onLost(now, ev.Lost)
	for _, p := range ev.Acked {
		if c.inRecovery && p.SentTime.Before(c.recovery) {
			continue // acked during recovery: no growth
		}
		c.inRecovery = false
		c.grow(now, float64(p.Bytes))
	}
	c.applyFloor()
}

// OnLoss implements [Controller].
func (c *CubicController) OnLoss(now time.Time, lost []PacketState, inflight int) {
	c.s.onAck(now, nil, lost, c.rtt.min)
	c.onLost(now, lost)
	c.applyFloor()
}

// onLost reduces the window once per loss event: losses of packets sent
// before the current reduction belong to the same event.
func (c *CubicController) onLost(now time.Time, lost []PacketState) {
	for _, p := range lost {
		if !c.recovery.IsZero() && p.SentTime.Before(c.recovery) {
			continue
		}
		c.inRecovery = true
		c.recovery = now
		c.epochStart = time.Time{}
		// Fast convergence: release bandwidth to newer flows.
		if c.cwnd < c.wMax {
			c.wMax = c.cwnd * (1 + cubicBeta) / 2
		} else {
			c.wMax = c.cwnd
		}
		c.ssthresh = max(c.cwnd*cubicBeta, minWindowPackets*c.mss)
		c.cwnd = c.ssthresh
		return
	}
}

// grow applies RFC 9438 section 4 for acked bytes.
func (c *CubicController) grow(now time.Time, acked float64) {
	if c.cwnd < c.ssthresh {
		c.cwnd += acked
		return
	}
	if c.epochStart.IsZero() {
		c.epochStart = now
		c.wEst = c.cwnd
		if c.cwnd < c.wMax {
			c.k = math.Cbrt((c.wMax - c.cwnd) / c.mss / cubicC)
		} else {
			c.k = 0
			c.wMax = c.cwnd
		}
	}
	rtt := c.rtt.smoothed
	if rtt == 0 {
		rtt = 100 * time.Millisecond
	}
	t := now.Sub(c.epochStart) + rtt
	d := t.Seconds() - c.k
	target := (cubicC*d*d*d)*c.mss + c.wMax
	target = min(max(target, c.cwnd), 1.5*c.cwnd)
	c.wEst += cubicAlpha * c.mss * acked / c.cwnd
	if c.wEst > target {
		// Reno-friendly region.
		target = c.wEst
	}
	c.cwnd += (target - c.cwnd) * acked / c.cwnd
}

func (c *CubicController) applyFloor() {
	floor := minWindowPackets * c.mss
	if c.cfg.MinBandwidth > 0 && c.rtt.min > 0 {
		floor = max(floor, float64(c.cfg.MinBandwidth.BytesIn(c.rtt.min)))
	}
	c.cwnd = max(c.cwnd, floor)
}

// CanSend implements [Controller].
func (c *CubicController) CanSend(inflight int) bool { return float64(inflight) < c.cwnd }

// CongestionWindow implements [Controller].
func (c *CubicController) CongestionWindow() int { return int(c.cwnd) }

// PacingRate implements [Controller].
func (c *CubicController) PacingRate() Bandwidth {
	var r Bandwidth
	switch {
	case c.rtt.smoothed == 0 && c.cfg.InitialRate > 0:
		r = c.cfg.InitialRate
	case c.rtt.smoothed == 0:
		r = Bandwidth(c.cwnd / 0.001) // the initial window within 1 ms
	default:
		gain := cubicPacingGain
		if c.cwnd < c.ssthresh {
			gain = cubicSlowStartPacingGain
		}
		r = Bandwidth(gain * c.cwnd / c.rtt.smoothed.Seconds())
	}
	return c.cfg.clamp(r)
}

// Stats implements [Controller].
func (c *CubicController) Stats() Stats {
	state := "congestion_avoidance"
	switch {
	case c.inRecovery:
		state = "recovery"
	case c.cwnd < c.ssthresh:
		state = "slow_start"
	}
	return Stats{
		Algorithm:        string(Cubic),
		State:            state,
		Bandwidth:        c.rate,
		PacingRate:       c.PacingRate(),
		CongestionWindow: c.CongestionWindow(),
		MinRTT:           c.rtt.min,
		SmoothedRTT:      c.rtt.smoothed,
		Delivered:        c.s.delivered,
		Lost:             c.s.lost,
	}
}
