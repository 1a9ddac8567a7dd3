package cc

import (
	"math"
	"time"
)

// NoneController applies no congestion control: the window is unlimited and
// the pacing rate is MaxBandwidth if set, else unlimited. It still measures
// RTT and delivery rate, so [Stats] stays meaningful. This is uxp's
// behaviour before congestion control, for dedicated links and LANs.
type NoneController struct {
	cfg     Config
	s       sampler
	rtt     rttStats
	maxRate Bandwidth
}

var _ Controller = (*NoneController)(nil)

// NewNone returns a controller that never limits the sender (except by
// cfg.MaxBandwidth).
func NewNone(cfg Config) *NoneController { return &NoneController{cfg: cfg} }

// OnPacketSent implements [Controller].
func (n *NoneController) OnPacketSent(now time.Time, bytes, inflight int) PacketState {
	return n.s.onSent(now, bytes, inflight)
}

// OnAck implements [Controller].
func (n *NoneController) OnAck(now time.Time, ev AckEvent) {
	rs := n.s.onAck(now, ev.Acked, ev.Lost, n.rtt.min)
	n.rtt.update(rttOf(ev, rs))
	if rs.ok {
		n.maxRate = max(n.maxRate, rs.rate)
	}
}

// OnLoss implements [Controller].
func (n *NoneController) OnLoss(now time.Time, lost []PacketState, inflight int) {
	n.s.onAck(now, nil, lost, n.rtt.min)
}

// OnAppLimited implements [Controller].
func (n *NoneController) OnAppLimited(inflight int) { n.s.onAppLimited(inflight) }

// CanSend implements [Controller]; it is always true.
func (n *NoneController) CanSend(int) bool { return true }

// CongestionWindow implements [Controller]; it is effectively unlimited.
func (n *NoneController) CongestionWindow() int { return math.MaxInt / 2 }

// PacingRate implements [Controller].
func (n *NoneController) PacingRate() Bandwidth {
	if n.cfg.MaxBandwidth > 0 {
		return n.cfg.MaxBandwidth
	}
	return Unlimited
}

// Stats implements [Controller].
func (n *NoneController) Stats() Stats {
	return Stats{
		Algorithm:        string(None),
		State:            "unlimited",
		Bandwidth:        n.maxRate,
		PacingRate:       n.PacingRate(),
		CongestionWindow: n.CongestionWindow(),
		MinRTT:           n.rtt.min,
		SmoothedRTT:      n.rtt.smoothed,
		Delivered:        n.s.delivered,
		Lost:             n.s.lost,
	}
}

// rttOf returns the RTT sample of an acknowledgement: the sender's if it
// gave one, else the sampler's.
func rttOf(ev AckEvent, rs rateSample) time.Duration {
	if ev.RTT > 0 || ev.NoRTT {
		return ev.RTT
	}
	return rs.rtt
}
