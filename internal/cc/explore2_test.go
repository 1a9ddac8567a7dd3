package cc

import (
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

func TestExploreStep(t *testing.T) {
	sc := simScenario{rate: 20e6, schedule: []netsim.RateStep{{At: 10 * time.Second, Rate: 5e6}, {At: 20 * time.Second, Rate: 20e6}}, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 12 * time.Second, flows: []simFlowSpec{{alg: BBR}}}
	s := &sim{now: simStart}
	_ = s
	r := runSimTrace(t, sc, func(now time.Time, f *simFlow) {
		off := now.Sub(simStart)
		if off > 9900*time.Millisecond && off < 11500*time.Millisecond {
			b := f.cc.(*BBRController)
			st := b.Stats()
			t.Logf("%v %s bw %.2f maxbw %.2f lo %.2f pace %.2f cwnd %d infl %d hi %d minrtt %v base %.3f q %v", off, st.State, st.Bandwidth.BitsPerSecond()/1e6, b.maxBw().BitsPerSecond()/1e6, 0.0, st.PacingRate.BitsPerSecond()/1e6, st.CongestionWindow, f.inflight, b.inflightHi, b.minRTT, b.baseline, f.link.b.QueueDelay(now))
		}
	})
	_ = r
}
