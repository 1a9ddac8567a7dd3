package cc

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uxp-go/uxp/internal/netsim"
)

// The scenarios reproduce issue 14's bottleneck: 20 Mbit/s, a 50 ms
// tail-drop queue, 20 ms each way (40 ms base RTT), 1200-byte packets.
const (
	simRate   = 20e6
	simOneWay = 20 * time.Millisecond
	simQueue  = 50 * time.Millisecond
	simBase   = 2 * simOneWay
	simLinkBs = simRate / 8 // link rate in bytes per second
)

// TestSimSingleFlow runs one bulk flow of each algorithm through the
// bottleneck for 10 s, measuring from 2 s on. BBR must keep >= 0.9 of the
// link, lose <= 2 % of its packets at the queue and keep the p99 queueing
// delay under 20 ms (the queue holds 50 ms); Cubic and none fill the queue.
func TestSimSingleFlow(t *testing.T) {
	const dur = 10 * time.Second
	tests := []struct {
		name string
		spec simFlowSpec
	}{
		{"bbr", simFlowSpec{alg: BBR}},
		{"bbr-ack-thinning", simFlowSpec{alg: BBR, acks: true}},
		{"cubic", simFlowSpec{alg: Cubic}},
		// None with KCP's default 256-packet window: today's behaviour.
		{"none", simFlowSpec{alg: None, window: 256}},
	}
	p99 := map[string]time.Duration{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, simScenario{rate: simRate, oneWay: simOneWay, queue: simQueue, duration: dur, flows: []simFlowSpec{tt.spec}})
			f := r.flows[0]
			good := f.goodputBetween(2*time.Second, dur) / simLinkBs
			drops := float64(f.queueDrops) / float64(f.sentPkts)
			p50, p99q := r.link.waitPercentile(2*time.Second, dur, 50), r.link.waitPercentile(2*time.Second, dur, 99)
			acks := float64(f.acksSent) / float64(f.dataRecv)
			p99[tt.name] = p99q
			t.Logf("%s: goodput %.3f of link, queue drops %.2f%%, queue delay p50 %v p99 %v, ACKs per data packet %.2f\n%s",
				tt.name, good, 100*drops, p50.Round(10*time.Microsecond), p99q.Round(10*time.Microsecond), acks, r)
			if tt.spec.alg != BBR {
				return
			}
			require.GreaterOrEqual(t, good, 0.9, "goodput")
			require.LessOrEqual(t, drops, 0.02, "queue drops")
			require.Less(t, p99q, 20*time.Millisecond, "p99 queueing delay")
			if tt.spec.acks {
				require.LessOrEqual(t, acks, 0.55, "ACKs per data packet")
			}
		})
	}
	// The contrast: a loss-based controller and no controller fill the
	// 50 ms queue.
	require.Greater(t, p99["cubic"], 2*p99["bbr"])
	require.Greater(t, p99["none"], 40*time.Millisecond)
}

// TestSimTwoFlows shares the bottleneck between two BBR flows, started
// together or 1 s apart, for 60 s, and requires each flow's share of the
// goodput over [10 s, 60 s] to be within 40/60. Two seeds vary the flows'
// probing schedules (a sweep of 8 seeds gave shares from 0.44 to 0.56).
func TestSimTwoFlows(t *testing.T) {
	const dur = 60 * time.Second
	type run struct {
		start time.Duration
		seed  uint64
	}
	for _, rn := range []run{{0, 0}, {time.Second, 0}, {0, 10}, {time.Second, 10}} {
		t.Run(fmt.Sprintf("second starts at %v, seed %d", rn.start, rn.seed), func(t *testing.T) {
			r := runSim(t, simScenario{rate: simRate, oneWay: simOneWay, queue: simQueue, duration: dur, seed: rn.seed,
				flows: []simFlowSpec{{alg: BBR}, {alg: BBR, start: rn.start}}})
			a := r.flows[0].goodputBetween(10*time.Second, dur)
			b := r.flows[1].goodputBetween(10*time.Second, dur)
			share := a / (a + b)
			var drops, sent int
			for _, f := range r.flows {
				drops += f.queueDrops
				sent += f.sentPkts
			}
			t.Logf("shares %.3f / %.3f, link use %.3f, queue drops %.2f%%, queue delay p50 %v p99 %v\n%s",
				share, 1-share, (a+b)/simLinkBs, 100*float64(drops)/float64(sent),
				r.link.waitPercentile(10*time.Second, dur, 50).Round(10*time.Microsecond),
				r.link.waitPercentile(10*time.Second, dur, 99).Round(10*time.Microsecond), r)
			require.InDelta(t, 0.5, share, 0.1, "share of flow 0")
			require.GreaterOrEqual(t, (a+b)/simLinkBs, 0.95, "link use")
			require.LessOrEqual(t, float64(drops)/float64(sent), 0.02, "queue drops")
		})
	}
}

// TestSimRateStep steps the link 20 -> 5 -> 20 Mbit/s at 10 s and 20 s.
// After the drop, the queueing delay must be back under the base RTT (so
// the RTT under twice the base RTT) within 2 s and stay there; after the
// rise, BBR must find the new rate again.
func TestSimRateStep(t *testing.T) {
	const (
		down = 10 * time.Second
		up   = 20 * time.Second
		dur  = 30 * time.Second
	)
	r := runSim(t, simScenario{rate: simRate, oneWay: simOneWay, queue: simQueue, duration: dur,
		schedule: []netsim.RateStep{{At: down, Rate: 5e6}, {At: up, Rate: simRate}},
		flows:    []simFlowSpec{{alg: BBR}}})
	// settle is the first moment after the drop from which no packet
	// queued for base RTT or longer until the rise.
	settle := down
	for _, s := range r.link.waits {
		off := s.at.Sub(simStart)
		if off >= down && off < up && s.wait >= simBase {
			settle = off
		}
	}
	f := r.flows[0]
	low := f.goodputBetween(down+2*time.Second, up) / (5e6 / 8)
	high := f.goodputBetween(up+2*time.Second, dur) / simLinkBs
	t.Logf("queueing delay under the base RTT %v after the drop; goodput %.3f of 5 Mbit/s after it, %.3f of 20 Mbit/s 2 s after the rise; p99 queue delay at 5 Mbit/s from +2 s: %v\n%s",
		settle-down, low, high, r.link.waitPercentile(down+2*time.Second, up, 99).Round(10*time.Microsecond), r)
	require.LessOrEqual(t, settle-down, 2*time.Second, "time to drain the queue after the drop")
	require.GreaterOrEqual(t, low, 0.9, "goodput after the drop")
	require.GreaterOrEqual(t, high, 0.9, "goodput after the rise")
}

// TestSimRandomLoss adds 5 % random loss after the queue, as on a mobile
// link. BBR must keep >= 0.9 of the link rate (0.95 is the most any sender
// can get; measured 0.924, and 0.886 while a round with a standing queue
// and loss merely above the random-loss baseline counted as congested);
// Cubic, reading every loss as congestion, collapses.
func TestSimRandomLoss(t *testing.T) {
	const dur = 10 * time.Second
	good := map[Algorithm]float64{}
	for _, alg := range []Algorithm{BBR, Cubic} {
		r := runSim(t, simScenario{rate: simRate, oneWay: simOneWay, queue: simQueue, loss: 0.05, duration: dur,
			flows: []simFlowSpec{{alg: alg}}})
		good[alg] = r.flows[0].goodputBetween(2*time.Second, dur) / simLinkBs
		t.Logf("%s under 5%% random loss: goodput %.3f of link\n%s", alg, good[alg], r)
	}
	require.GreaterOrEqual(t, good[BBR], 0.9, "BBR goodput")
	require.Less(t, good[Cubic], 0.25, "Cubic goodput")
	require.Greater(t, good[BBR], 4*good[Cubic])
}

// TestSimBBRStates checks that a 12 s bulk flow visits every BBR state,
// ProbeRTT included (the minimum RTT is not undercut for 5 s on a
// perfectly steady simulated path).
func TestSimBBRStates(t *testing.T) {
	seen := map[string]bool{}
	runSimTrace(t, simScenario{rate: simRate, oneWay: simOneWay, queue: simQueue, duration: 12 * time.Second,
		flows: []simFlowSpec{{alg: BBR}}}, func(_ time.Time, f *simFlow) { seen[f.cc.Stats().State] = true })
	for _, s := range []string{"startup", "drain", "probe_bw:down", "probe_bw:cruise", "probe_bw:refill", "probe_bw:up", "probe_rtt"} {
		require.True(t, seen[s], "state %s never visited (saw %v)", s, seen)
	}
}

// TestSimBandwidthBounds checks Config.MaxBandwidth (a 5 Mbit/s cap on the
// 20 Mbit/s link) and Config.MinBandwidth (a 4 Mbit/s floor on a 2 Mbit/s
// link: the pacing rate stays at the floor although the path is slower).
func TestSimBandwidthBounds(t *testing.T) {
	t.Run("max", func(t *testing.T) {
		s := &sim{now: simStart}
		link := &simLink{b: netsim.NewBottleneck(netsim.BottleneckConfig{Rate: simRate, QueueDelay: simQueue, Delay: simOneWay}, simStart), ackDelay: simOneWay}
		f := newSimFlow(s, link, NewBBR(Config{MSS: simMSS, MaxBandwidth: BitsPerSecond(5e6)}), simStart)
		s.run(simStart.Add(10 * time.Second))
		good := f.goodputBetween(2*time.Second, 10*time.Second) * 8
		t.Logf("goodput %.2f Mbit/s under a 5 Mbit/s cap", good/1e6)
		require.InDelta(t, 5e6, good, 0.5e6)
		require.LessOrEqual(t, f.cc.PacingRate(), BitsPerSecond(5e6))
	})
	t.Run("min", func(t *testing.T) {
		s := &sim{now: simStart}
		link := &simLink{b: netsim.NewBottleneck(netsim.BottleneckConfig{Rate: 2e6, QueueDelay: simQueue, Delay: simOneWay}, simStart), ackDelay: simOneWay}
		floor := BitsPerSecond(4e6)
		f := newSimFlow(s, link, NewBBR(Config{MSS: simMSS, MinBandwidth: floor}), simStart)
		s.run(simStart.Add(10 * time.Second))
		st := f.cc.Stats()
		t.Logf("%+v", st)
		require.GreaterOrEqual(t, st.PacingRate, Bandwidth(float64(floor)*0.75)) // DOWN may pace at 0.75 of the floor
		require.GreaterOrEqual(t, st.Bandwidth, floor)
	})
}

// TestSimVersusCubic shares the bottleneck with a Cubic flow (the stand-in
// for a TCP bulk transfer) for 60 s: BBR's share over [10 s, 60 s] must be
// between 25 % and 75 %, issue 14's bottleneck-vs-tcp target. Cubic keeps
// the queue full, so BBR neither starves nor takes the link.
func TestSimVersusCubic(t *testing.T) {
	const dur = 60 * time.Second
	for _, start := range []time.Duration{0, time.Second} {
		t.Run("cubic starts at "+start.String(), func(t *testing.T) {
			r := runSim(t, simScenario{rate: simRate, oneWay: simOneWay, queue: simQueue, duration: dur,
				flows: []simFlowSpec{{alg: BBR}, {alg: Cubic, start: start}}})
			a := r.flows[0].goodputBetween(10*time.Second, dur)
			b := r.flows[1].goodputBetween(10*time.Second, dur)
			t.Logf("BBR share %.3f\n%s", a/(a+b), r)
			require.InDelta(t, 0.5, a/(a+b), 0.25)
		})
	}
}
