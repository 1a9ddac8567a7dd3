package cc

import (
	"testing"
	"time"
)

func TestExploreTwo(t *testing.T) {
	sc := simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 30 * time.Second, flows: []simFlowSpec{{alg: BBR}, {alg: BBR, start: time.Second}}}
	last := map[*simFlow]time.Duration{}
	states := map[*simFlow]map[string]int{}
	runSimTrace(t, sc, func(now time.Time, f *simFlow) {
		b := f.cc.(*BBRController)
		if states[f] == nil {
			states[f] = map[string]int{}
		}
		states[f][b.State()]++
		off := now.Sub(simStart)
		if off-last[f] < 2*time.Second {
			return
		}
		last[f] = off
		st := b.Stats()
		t.Logf("%v %p %s bw %.2f pace %.2f cwnd %d infl %d hi %d minrtt %v srtt %v base %.3f q %v", off.Truncate(time.Millisecond), f, st.State, st.Bandwidth.BitsPerSecond()/1e6, st.PacingRate.BitsPerSecond()/1e6, st.CongestionWindow, f.inflight, b.inflightHi, b.minRTT, st.SmoothedRTT, b.baseline, f.link.b.QueueDelay(now))
	})
	for f, m := range states {
		t.Logf("%p %v", f, m)
	}
}
