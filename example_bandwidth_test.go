package uxp_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp"
)

// renditions are a live stream's encoder bitrates, lowest first.
var renditions = []uxp.Bandwidth{
	500 * uxp.KilobitPerSecond,
	1200 * uxp.KilobitPerSecond,
	2500 * uxp.KilobitPerSecond,
	5 * uxp.MegabitPerSecond,
}

// headroom is the share of the estimate the stream may use; the rest is
// for retransmissions, audio and control messages and the estimate's
// error (docs/tuning.md, "Picking a bitrate from the estimate").
const headroomNum, headroomDen = 8, 10

// fits returns the highest rendition that fits in 80 % of the estimate
// bw, the lowest if none does.
func fits(bw uxp.Bandwidth) int {
	i := 0
	for j, r := range renditions {
		if r*headroomDen <= bw*headroomNum {
			i = j
		}
	}
	return i
}

// upHold is how long the estimate must have covered the next rendition
// before the stream steps up to it.
const upHold = 4 * time.Second

// liveStream is a streaming server's session handler: it follows the
// session's bandwidth estimate and picks the rendition the encoder uses.
type liveStream struct {
	uxp.NopHandler
	rendition atomic.Int32 // index into renditions; the encoder reads it

	mu      sync.Mutex // OnBandwidthChange runs on the session's worker
	started bool
	upSince time.Time // since when the estimate covers the next rendition; zero if it does not
}

// OnBandwidthChange runs on the session's worker, only when the estimate
// changed meaningfully (the first estimate, then by 1/8 or more); it must
// not block, so it only publishes the new choice.
func (s *liveStream) OnBandwidthChange(_ *uxp.Conn, bw uxp.Bandwidth) {
	s.onEstimate(bw, time.Now())
}

// onEstimate picks the rendition for the estimate bw at now: the first
// estimate chooses directly; later, a lower estimate steps down at once
// and a higher one steps up one rendition once it has covered the next
// rendition for upHold. (An estimate can sit near the stream's own
// bitrate, because the controller learns from what the stream sends: a
// real server also tries the next rendition after a quiet period and
// steps back if the send queue grows; docs/tuning.md.)
func (s *liveStream) onEstimate(bw uxp.Bandwidth, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, want := int(s.rendition.Load()), fits(bw)
	switch {
	case !s.started:
		s.started = true
		s.rendition.Store(int32(want))
	case want < cur:
		s.rendition.Store(int32(want))
		s.upSince = time.Time{}
	case want > cur && s.upSince.IsZero():
		s.upSince = now
	case want > cur && now.Sub(s.upSince) >= upHold:
		s.rendition.Store(int32(cur + 1))
		s.upSince = time.Time{}
	case want == cur:
		s.upSince = time.Time{}
	}
}

var _ uxp.BandwidthHandler = (*liveStream)(nil)

// A live-streaming server picks its bitrate from the session's bandwidth
// estimate (BandwidthHandler): at most 80 % of the estimate, down at once,
// up one rendition at a time. Config.MinBandwidth keeps a floor under the
// congestion controller at the lowest rendition; Config.MaxBandwidth caps
// each session at what the top rendition needs, so the controller does
// not probe for bandwidth the stream will never use.
func ExampleBandwidthHandler() {
	cfg := &uxp.Config{
		MinBandwidth: renditions[0],                                             // the lowest rendition
		MaxBandwidth: renditions[len(renditions)-1] * headroomDen / headroomNum, // the highest, with headroom
	}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("controller between", cfg.MinBandwidth, "and", cfg.MaxBandwidth)

	// The estimates a session might report, as OnBandwidthChange would.
	s := &liveStream{}
	t0 := time.Unix(0, 0)
	for _, e := range []struct {
		at time.Duration
		bw uxp.Bandwidth
	}{
		{0, 2 * uxp.MegabitPerSecond},               // first estimate: 80 % is 1.6 Mbit/s
		{2 * time.Second, 4 * uxp.MegabitPerSecond}, // covers 2.5 Mbit/s: wait
		{7 * time.Second, 4500 * uxp.KilobitPerSecond},
		{9 * time.Second, 1 * uxp.MegabitPerSecond}, // the path got worse: down at once
	} {
		s.onEstimate(e.bw, t0.Add(e.at))
		fmt.Printf("t=%v estimate %v: encode at %v\n", e.at, e.bw, renditions[s.rendition.Load()])
	}
	// Output:
	// controller between 500 kbit/s and 6.25 Mbit/s
	// t=0s estimate 2 Mbit/s: encode at 1.2 Mbit/s
	// t=2s estimate 4 Mbit/s: encode at 1.2 Mbit/s
	// t=7s estimate 4.5 Mbit/s: encode at 2.5 Mbit/s
	// t=9s estimate 1 Mbit/s: encode at 500 kbit/s
}
