package uxp_test

import (
	"fmt"
	"sync/atomic"

	"github.com/uxp-go/uxp"
)

// liveStream is a streaming server's session handler: it follows the
// session's bandwidth estimate and encodes at 80 % of it, leaving room for
// retransmissions and FEC parity.
type liveStream struct {
	uxp.NopHandler
	bitrate atomic.Int64 // bits per second, read by the encoder goroutine
}

// OnBandwidthChange runs on the session's worker, only when the estimate
// changed meaningfully (the first estimate, then by 1/8 or more); it must
// not block, so it only publishes the new target.
func (s *liveStream) OnBandwidthChange(_ *uxp.Conn, bw uxp.Bandwidth) {
	s.bitrate.Store(bw.BitsPerSecond() * 8 / 10)
}

var _ uxp.BandwidthHandler = (*liveStream)(nil)

// A live-streaming server picks its bitrate from the session's bandwidth
// estimate (BandwidthHandler). Config.MinBandwidth keeps a floor under the
// congestion controller, Config.MaxBandwidth caps each session.
func ExampleBandwidthHandler() {
	cfg := &uxp.Config{
		MinBandwidth: 500 * uxp.KilobitPerSecond, // the lowest rendition
		MaxBandwidth: 8 * uxp.MegabitPerSecond,   // the highest
	}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	s := &liveStream{}
	s.OnBandwidthChange(nil, 5*uxp.MegabitPerSecond) // as the session would call it
	fmt.Println(cfg.MinBandwidth, "to", cfg.MaxBandwidth)
	fmt.Println("encode at", uxp.Bandwidth(s.bitrate.Load()/8))
	// Output:
	// 500 kbit/s to 8 Mbit/s
	// encode at 4 Mbit/s
}
