package uxp

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp/internal/cc"
)

// The session's congestion controller (internal/cc), one per session and
// owned by its shard like the rest of connShard. What it learns today:
//
//   - the handshake's round trip, its first RTT sample (client: initiation
//     sent → response received, in client_attempt.go; server: response
//     sent → first authenticated packet, in establish), so that the RTT is
//     known when OnReady runs;
//   - every heartbeat RTT sample (heartbeat.go).
//
//   - every data segment the lanes send and every acknowledgement
//     (internal/arq congestion.go: OnPacketSent, OnAck, OnLoss), and
//     OnAppLimited from the gate (cc_gate.go).
//
// Whether it limits what the session sends is cc_gate.go's.

// congestionState is a session's controller and what it publishes.
type congestionState struct {
	ctrl cc.Controller     // owned by the shard (before the session is shared: by its creator)
	alg  CongestionControl // immutable

	// snap is the controller's last published view, for Stats (any
	// goroutine, under snapMu); written by the owner after each input.
	// A value under a mutex rather than an atomic pointer to a fresh
	// copy: the owner publishes after every ACK, and a copy per publish
	// was 1 MB/s of garbage at 10,000 sessions. The owner reads snap
	// without the lock (it is the only writer).
	snapMu sync.Mutex
	snap   CongestionStats

	// The bandwidth report (BandwidthHandler); shard only.
	reportedBW Bandwidth
	reportedAt time.Time

	// handshakeSent is when a server session's response was last sent,
	// in ns since ep.epoch, the start of its handshake RTT sample, and
	// handshakeResent says it was sent more than once (handshakeRTT).
	// Written by the handshake loop, read by the shard in establish.
	handshakeSent   atomic.Int64
	handshakeResent atomic.Bool

	// The gate (cc_gate.go); shard only. gated is false for
	// CongestionNone, which gates nothing.
	gated       bool
	pacer       *cc.Pacer
	ackPol      cc.AckPolicy
	ackDue      bool      // the ACK policy asked for an ACK now
	ackOwedAt   time.Time // when the first of the ACKs owed was (sessionAcks.fecHolds)
	publishedAt time.Time
	dq          []queuedDgram // datagrams waiting for the pacer
	extra       extraShare    // paced bytes the controller does not see (gatePacingRate)
	leastRTT    time.Duration // smallest MinRTT the controller reported (setSendBudget)
	// extraSince counts the bytes of datagrams and parity paced since the
	// last data packet; extraHeld says the pacer refused the last
	// admission only because of them (admitBudget, noteAppLimited).
	extraSince int
	extraHeld  bool

	// The outbound loss measured from acknowledgements (lossFromAcks).
	lossAt             time.Time
	lossLost, lossSent uint64

	// sendQueueDelay is the stream's send queue delay in ns
	// (ConnStats.SendQueueDelay), written by the StreamConn (stream_send.go).
	sendQueueDelay atomic.Int64
}

// congestionSettings is the resolved congestion part of a Config.
type congestionSettings struct {
	alg CongestionControl
	// gate: the controller limits what the session sends (cc_gate.go):
	// every controller but CongestionNone, the zero value included.
	gate bool
	cfg  cc.Config // MSS and Seed are per session
}

// resolveCongestion checks and resolves c's congestion fields.
func (c *Config) resolveCongestion() (congestionSettings, error) {
	cs := congestionSettings{alg: c.CongestionControl, gate: c.CongestionControl != CongestionNone}
	if cs.alg == "" {
		cs.alg = CongestionModel
	}
	bad := func(field, reason string) (congestionSettings, error) {
		return cs, &ConfigError{Field: field, Reason: reason}
	}
	switch {
	case cs.alg != CongestionModel && cs.alg != CongestionCubic && cs.alg != CongestionNone:
		return bad("CongestionControl", "unknown controller "+strconv.Quote(string(cs.alg))+" (want bbr, cubic or none)")
	case c.MinBandwidth < 0:
		return bad("MinBandwidth", "negative ("+c.MinBandwidth.String()+")")
	case c.MaxBandwidth < 0:
		return bad("MaxBandwidth", "negative ("+c.MaxBandwidth.String()+")")
	case c.MaxBandwidth > 0 && c.MaxBandwidth < c.MinBandwidth:
		return bad("MaxBandwidth", c.MaxBandwidth.String()+" is below MinBandwidth "+c.MinBandwidth.String())
	case c.InitialRate < 0:
		return bad("InitialRate", "negative ("+c.InitialRate.String()+")")
	}
	cs.cfg = cc.Config{
		InitialRate:  cc.Bandwidth(c.InitialRate),
		MinBandwidth: cc.Bandwidth(c.MinBandwidth),
		MaxBandwidth: cc.Bandwidth(c.MaxBandwidth),
	}
	return cs, nil
}

// initCongestion makes the session's controller.
func (c *Conn) initCongestion() {
	cs := c.ep.set.congestion
	cfg := cs.cfg
	cfg.MSS = c.mtu
	cfg.Seed = uint64(c.id)
	ctrl, err := cc.New(cc.Algorithm(cs.alg), cfg)
	if err != nil {
		// Unreachable: resolveCongestion checked the fields cc checks.
		ctrl = cc.NewNone(cc.Config{MSS: c.mtu})
		c.ep.log.Error("uxp: congestion controller refused its config", "session", c.id, "err", err)
	}
	if w := c.ep.set.hooks.wrapController; w != nil {
		ctrl = w(ctrl)
	}
	c.cong.ctrl, c.cong.alg = ctrl, cs.alg
	c.publishCongestion()
}

// handshakeRTT takes the handshake's round trip as the session's first RTT
// sample, so that Stats().RTT is valid when OnReady runs. A client measures
// from its last initiation to the response, a server from its last
// response to the client's first authenticated packet. After a
// retransmission (resent) which copy was answered is ambiguous (Karn): the
// last copy's time is exact when the earlier one was lost, the common case
// on paths shorter than the 250 ms retransmission, and short otherwise.
// Stats takes it either way (the heartbeats correct it); the controller
// takes only an unambiguous sample, because a short one would stick in its
// minimum-RTT filter and shrink its window. Owner only.
func (c *Conn) handshakeRTT(rtt time.Duration, resent bool, now time.Time) {
	if rtt <= 0 {
		return
	}
	c.hb.sample(rtt)
	c.publishRTT()
	if !resent {
		c.congestionRTT(rtt, now)
	}
}

// congestionRTT feeds an RTT sample measured outside the acknowledgements
// (the handshake, a heartbeat) to the controller. The controller takes it
// as an acknowledgement of nothing: an app-limited one, so that the empty
// delivery sample it implies does not read as a narrow path. Owner only.
func (c *Conn) congestionRTT(rtt time.Duration, now time.Time) {
	if rtt <= 0 || c.cong.ctrl == nil {
		return
	}
	c.cong.ctrl.OnAppLimited(0)
	c.cong.ctrl.OnAck(now, cc.AckEvent{RTT: rtt})
	c.publishCongestion()
}

// publishCongestion publishes the controller's view for Stats.
func (c *Conn) publishCongestion() {
	st := c.cong.ctrl.Stats()
	snap := CongestionStats{
		Algorithm:        c.cong.alg,
		State:            st.State,
		Bandwidth:        bandwidthOf(st.Bandwidth),
		PacingRate:       bandwidthOf(st.PacingRate),
		CongestionWindow: windowOf(st.CongestionWindow),
		BytesInFlight:    c.arq.BytesInFlight(),
		MinRTT:           st.MinRTT,
		SmoothedRTT:      st.SmoothedRTT,
	}
	c.cong.snapMu.Lock()
	c.cong.snap = snap
	c.cong.snapMu.Unlock()
}

// reportBandwidth calls the handler's OnBandwidthChange if the estimate
// changed meaningfully since the last report. Shard only, outside any
// lock; congestionTick (cc_gate.go) calls it after the events that fed
// the controller.
func (c *Conn) reportBandwidth(now time.Time) {
	snap := &c.cong.snap // the owner: no lock needed to read
	if !bandwidthChanged(c.cong.reportedBW, c.cong.reportedAt, snap.Bandwidth, now) {
		return
	}
	bh, ok := c.handlerFor().(BandwidthHandler)
	if !ok {
		return
	}
	c.cong.reportedBW, c.cong.reportedAt = snap.Bandwidth, now
	defer c.recoverCallback("OnBandwidthChange")
	bh.OnBandwidthChange(c, snap.Bandwidth)
}

// congestionStats is ConnStats.Congestion.
func (c *Conn) congestionStats() CongestionStats {
	c.cong.snapMu.Lock()
	defer c.cong.snapMu.Unlock()
	return c.cong.snap
}

// bandwidthOf converts a cc rate, +Inf meaning unlimited, to a Bandwidth,
// zero meaning unlimited.
func bandwidthOf(b cc.Bandwidth) Bandwidth {
	if math.IsInf(float64(b), 1) || b >= math.MaxInt64/2 {
		return 0
	}
	return Bandwidth(b)
}

// windowOf converts a cc window, huge meaning unlimited, to zero meaning
// unlimited.
func windowOf(w int) int {
	if w >= math.MaxInt/4 {
		return 0
	}
	return w
}
