package cc

import (
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

func TestExplore(t *testing.T) {
	link := 20e6 / 8.0
	for _, sc := range []struct {
		name string
		sc   simScenario
	}{
		{"bbr", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 10 * time.Second, flows: []simFlowSpec{{alg: BBR}}}},
		{"bbr-acks", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 10 * time.Second, flows: []simFlowSpec{{alg: BBR, acks: true}}}},
		{"cubic", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 10 * time.Second, flows: []simFlowSpec{{alg: Cubic}}}},
		{"none", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 10 * time.Second, flows: []simFlowSpec{{alg: None, window: 256}}}},
		{"bbr-loss", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, loss: 0.05, duration: 10 * time.Second, flows: []simFlowSpec{{alg: BBR}}}},
		{"cubic-loss", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, loss: 0.05, duration: 10 * time.Second, flows: []simFlowSpec{{alg: Cubic}}}},
		{"bbr2", simScenario{rate: 20e6, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 30 * time.Second, flows: []simFlowSpec{{alg: BBR}, {alg: BBR, start: time.Second}}}},
		{"step", simScenario{rate: 20e6, schedule: []netsim.RateStep{{At: 10 * time.Second, Rate: 5e6}, {At: 20 * time.Second, Rate: 20e6}}, oneWay: 20 * time.Millisecond, queue: 50 * time.Millisecond, duration: 30 * time.Second, flows: []simFlowSpec{{alg: BBR}}}},
	} {
		r := runSim(t, sc.sc)
		t.Logf("%s:\n%s", sc.name, r)
		for i, f := range r.flows {
			t.Logf("  flow %d goodput [2s,end) %.3f of link; p50/p99 wait %v/%v", i, f.goodputBetween(2*time.Second, sc.sc.duration)/link,
				r.link.waitPercentile(2*time.Second, sc.sc.duration, 50), r.link.waitPercentile(2*time.Second, sc.sc.duration, 99))
		}
		if sc.name == "step" {
			for s := 9 * time.Second; s < 24*time.Second; s += 500 * time.Millisecond {
				t.Logf("  %v: p99 wait %v, goodput %.2f Mbit/s", s, r.link.waitPercentile(s, s+500*time.Millisecond, 99), r.flows[0].goodputBetween(s, s+500*time.Millisecond)*8/1e6)
			}
		}
	}
}
