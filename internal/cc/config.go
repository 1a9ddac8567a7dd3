package cc

import (
	"fmt"
	"math"
)

/* Implementation constants */

const (
	// DefaultMSS is the packet size assumed when Config.MSS is zero. uxp
	// always passes its session's packet size; 1400 was its default MTU
	// before the default followed the peer's address family.
	DefaultMSS = 1400
	// DefaultInitialWindow is the initial congestion window in packets
	// when Config.InitialWindow is zero (RFC 6928, as TCP and QUIC).
	DefaultInitialWindow = 10
	// minWindowPackets is the smallest congestion window, in packets, any
	// controller here uses (BBR's BBRMinPipeCwnd).
	minWindowPackets = 4
)

// Algorithm names a congestion controller.
type Algorithm string

// The algorithms [New] knows.
const (
	// BBR is the default, model-based controller (see [BBR]).
	BBR Algorithm = "bbr"
	// Cubic is the RFC 9438 loss-based controller, for comparison.
	Cubic Algorithm = "cubic"
	// None sends without any congestion control, as uxp did before: for
	// dedicated links and LANs.
	None Algorithm = "none"
)

// Config configures a [Controller]. The zero value gives the defaults.
// The controllers copy what they need and never modify it.
type Config struct {
	// MSS is the size in bytes of a full packet; windows are floored at a
	// few MSS. Zero means DefaultMSS. Negative is invalid.
	MSS int
	// InitialWindow is the initial congestion window in packets. Zero
	// means DefaultInitialWindow. Negative is invalid.
	InitialWindow int
	// InitialRate is the pacing rate before the first RTT sample. Zero
	// means InitialWindow packets per millisecond, scaled by the startup
	// gain (draft-ietf-ccwg-bbr's nominal bandwidth), i.e. effectively no
	// pacing of the initial window. Negative is invalid.
	InitialRate Bandwidth
	// MinBandwidth is a floor: the bandwidth estimate and the pacing rate
	// never go below it, and the window never below MinBandwidth times the
	// minimum RTT. A game that must keep its tick rate sets its stream
	// rate here. Zero means no floor. Negative is invalid.
	MinBandwidth Bandwidth
	// MaxBandwidth caps the bandwidth estimate and the pacing rate. Zero
	// means no cap. Negative or below MinBandwidth is invalid.
	MaxBandwidth Bandwidth
	// Seed seeds BBR's choice of how long to cruise between bandwidth
	// probes, so that flows sharing a bottleneck do not probe in step.
	// Sessions should pass a per-session value (a session ID); zero is a
	// valid seed.
	Seed uint64
}

// Validate reports whether c is usable. The error wraps
// [ErrInvalidConfig].
func (c Config) Validate() error {
	bad := func(field string, v any) error { return fmt.Errorf("%w: %s = %v", ErrInvalidConfig, field, v) }
	switch {
	case c.MSS < 0:
		return bad("MSS", c.MSS)
	case c.InitialWindow < 0:
		return bad("InitialWindow", c.InitialWindow)
	case !(c.InitialRate >= 0):
		return bad("InitialRate", c.InitialRate)
	case !(c.MinBandwidth >= 0) || math.IsInf(float64(c.MinBandwidth), 1):
		return bad("MinBandwidth", c.MinBandwidth)
	case !(c.MaxBandwidth >= 0) || c.MaxBandwidth > 0 && c.MaxBandwidth < c.MinBandwidth:
		return bad("MaxBandwidth", c.MaxBandwidth)
	}
	return nil
}

func (c *Config) mss() int {
	if c.MSS == 0 {
		return DefaultMSS
	}
	return c.MSS
}

func (c *Config) initialWindow() int {
	if c.InitialWindow == 0 {
		return DefaultInitialWindow * c.mss()
	}
	return c.InitialWindow * c.mss()
}

// clamp applies MinBandwidth and MaxBandwidth to b.
func (c *Config) clamp(b Bandwidth) Bandwidth {
	if c.MaxBandwidth > 0 && b > c.MaxBandwidth {
		b = c.MaxBandwidth
	}
	return max(b, c.MinBandwidth)
}

// New returns a controller of algorithm a, or an error wrapping
// [ErrUnknownAlgorithm] or [ErrInvalidConfig].
func New(a Algorithm, cfg Config) (Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch a {
	case BBR:
		return NewBBR(cfg), nil
	case Cubic:
		return NewCubic(cfg), nil
	case None:
		return NewNone(cfg), nil
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownAlgorithm, string(a))
	}
}
