package cc

import (
	"testing"
	"time"
)

func TestExploreShare(t *testing.T) {
	for _, start := range []time.Duration{0, time.Second} {
		sc := simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 60 * time.Second, flows: []simFlowSpec{{alg: BBR}, {alg: BBR, start: start}}}
		r := runSim(t, sc)
		for s := time.Duration(0); s < sc.duration; s += 5 * time.Second {
			a, b := r.flows[0].goodputBetween(s, s+5*time.Second), r.flows[1].goodputBetween(s, s+5*time.Second)
			t.Logf("start %v [%v,+5s): share %.2f/%.2f total %.3f p50/p99 wait %v/%v", start, s, a/(a+b), b/(a+b), (a+b)/2.5e6, r.link.waitPercentile(s, s+5*time.Second, 50), r.link.waitPercentile(s, s+5*time.Second, 99))
		}
		t.Logf("%s", r)
	}
}
