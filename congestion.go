package uxp

import (
	"strconv"
	"time"
)

// Congestion control: the public surface (Config fields, ConnStats fields,
// BandwidthHandler). The per-session controller is in cc_session.go; the
// algorithms are in internal/cc.

// CongestionControl names a session's congestion controller
// (Config.CongestionControl).
type CongestionControl string

// The congestion controllers.
const (
	// CongestionModel is the default: a model-based controller in the
	// manner of BBR (draft-ietf-ccwg-bbr), which estimates the bottleneck
	// bandwidth and the minimum RTT from delivery-rate samples, so random
	// loss alone does not collapse its rate.
	CongestionModel CongestionControl = "bbr"
	// CongestionCubic is the RFC 9438 loss-based controller, for
	// comparison.
	CongestionCubic CongestionControl = "cubic"
	// CongestionNone applies no congestion control, as uxp did before: for
	// dedicated links and LANs. The session still measures its RTT.
	CongestionNone CongestionControl = "none"
)

// Bandwidth is a data rate in bytes per second.
type Bandwidth int64

// Bandwidth units.
const (
	BytePerSecond    Bandwidth = 1
	KilobitPerSecond Bandwidth = 125     // 1000 bits/s
	MegabitPerSecond Bandwidth = 125_000 // 10^6 bits/s
)

// BitsPerSecond returns b in bits per second.
func (b Bandwidth) BitsPerSecond() int64 { return int64(b) * 8 }

// String formats b in bits per second with a unit, e.g. "2.5 Mbit/s".
func (b Bandwidth) String() string {
	bits := float64(b.BitsPerSecond())
	switch {
	case bits >= 1e9:
		return strconv.FormatFloat(bits/1e9, 'f', -1, 64) + " Gbit/s"
	case bits >= 1e6:
		return strconv.FormatFloat(bits/1e6, 'f', -1, 64) + " Mbit/s"
	case bits >= 1e3:
		return strconv.FormatFloat(bits/1e3, 'f', -1, 64) + " kbit/s"
	}
	return strconv.FormatFloat(bits, 'f', -1, 64) + " bit/s"
}

// CongestionStats is the congestion controller's view of the path, in
// ConnStats.Congestion. Updated by the session's worker after each input
// to the controller.
//
// The controller learns from every data segment the session sends and
// every acknowledgement (internal/arq congestion.go), and from the
// handshake and heartbeat RTTs. With CongestionNone it only measures: the
// bandwidth is the largest delivery rate seen, and the window and pacing
// rate are zero (nothing is enforced).
type CongestionStats struct {
	// Algorithm is the controller in use (Config.CongestionControl).
	Algorithm CongestionControl
	// State is the controller's state: for the model-based one "startup",
	// "drain", "probe_bw:down", "probe_bw:cruise", "probe_bw:refill",
	// "probe_bw:up" or "probe_rtt"; for Cubic "slow_start",
	// "congestion_avoidance" or "recovery"; "unlimited" for none.
	State string
	// Bandwidth is the estimated bottleneck bandwidth; zero before the
	// first delivery-rate sample.
	Bandwidth Bandwidth
	// PacingRate is the rate packets leave at; zero means not paced.
	PacingRate Bandwidth
	// BytesInFlight is what was sent and is neither acknowledged nor
	// declared lost.
	BytesInFlight int
	// CongestionWindow is the most the controller lets be in flight, in
	// bytes; zero means unlimited.
	CongestionWindow int
	// MinRTT and SmoothedRTT are the controller's minimum and smoothed
	// RTT; zero before the first sample. The first sample is the
	// handshake's round trip, so both are set when OnReady runs.
	MinRTT, SmoothedRTT time.Duration
}

// BandwidthHandler is an optional interface for a ConnHandler: a session
// whose handler has it calls OnBandwidthChange when its bandwidth estimate
// (ConnStats.Congestion.Bandwidth) changes meaningfully, so a live-streaming
// server can pick its bitrate without polling Stats. "Meaningfully": the
// first estimate; then a change of at least 1/8 (12.5 %), at most once per
// 250 ms; a change of at least half, at most once per 50 ms
// (bandwidthChanged). OnBandwidthChange runs on the session's worker with no
// SDK lock held, like the other callbacks; it must not block. A panic in it
// closes the session (CloseCallbackPanic).
type BandwidthHandler interface {
	OnBandwidthChange(c *Conn, bw Bandwidth)
}

/* Implementation constants: the bandwidth report's rate limit. */
const (
	bandwidthStep         = 8 // report a change of at least 1/bandwidthStep...
	bandwidthInterval     = 250 * time.Millisecond
	bandwidthBigInterval  = 50 * time.Millisecond // ...or of at least half, sooner
	bandwidthBigChangeDiv = 2
)

// bandwidthChanged reports whether an estimate cur at now is a meaningful
// change from last, the value last reported at lastAt (zero: none yet):
// the rule BandwidthHandler documents. It is pure.
func bandwidthChanged(last Bandwidth, lastAt time.Time, cur Bandwidth, now time.Time) bool {
	if cur <= 0 {
		return false
	}
	if last <= 0 {
		return true
	}
	diff := cur - last
	if diff < 0 {
		diff = -diff
	}
	since := now.Sub(lastAt)
	switch {
	case diff*bandwidthBigChangeDiv >= last:
		return since >= bandwidthBigInterval
	case diff*bandwidthStep >= last:
		return since >= bandwidthInterval
	}
	return false
}
