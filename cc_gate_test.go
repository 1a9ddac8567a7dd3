package uxp

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// bottleneckRig is a server whose egress is a netsim bottleneck, with n
// clients each reading one bulk stream the server writes (so every
// session's data shares the one bottleneck queue). Run inside a synctest
// bubble.
type bottleneckRig struct {
	bc    *netsim.BottleneckConn
	srv   []*StreamConn
	cli   []*StreamConn
	got   []atomic.Int64 // bytes each client read
	start time.Time
}

func newBottleneckRig(t *testing.T, seed uint64, n int, bcfg netsim.BottleneckConfig, cfg Config) *bottleneckRig {
	t.Helper()
	nw := netsim.NewNetwork(seed)
	t.Cleanup(func() { nw.Close() })
	// Propagation delay: bcfg.Delay on the bottleneck's direction, the
	// same on the ACKs' direction (the network's default).
	nw.SetDefault(netsim.Impairment{Delay: bcfg.Delay})
	bcfg.Delay = 0
	kp := testKeys(t)
	spc, err := nw.Listen("10.0.0.1:4000")
	require.NoError(t, err)
	r := &bottleneckRig{bc: netsim.NewBottleneckConn(spc, bcfg), got: make([]atomic.Int64, n), start: time.Now()}
	scfg := cfg
	scfg.PrivateKey = kp.Private
	ln, err := Listen(r.bc, &scfg)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	for i := range n {
		cpc, err := nw.Listen(fmt.Sprintf("10.0.1.%d:5000", i+1))
		require.NoError(t, err)
		ccfg := cfg
		ccfg.ServerPublicKey = kp.Public
		cli, err := DialConnOver(context.Background(), cpc, spc.LocalAddr(), &ccfg)
		require.NoError(t, err)
		t.Cleanup(func() { cli.Close() })
		srv, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { srv.Close() })
		r.cli, r.srv = append(r.cli, cli), append(r.srv, srv.(*StreamConn))
		go func() {
			buf := make([]byte, 64<<10)
			for {
				k, err := cli.Read(buf)
				r.got[i].Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
		go func() {
			chunk := testMessage(i, 16<<10)
			for {
				if _, err := srv.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	return r
}

// sample returns each client's bytes read and the bottleneck's counters.
func (r *bottleneckRig) sample() ([]int64, netsim.BottleneckStats) {
	got := make([]int64, len(r.got))
	for i := range r.got {
		got[i] = r.got[i].Load()
	}
	return got, r.bc.Stats()
}

// gatedModel is the congestion configuration the tests below run: the
// model-based controller (the default), named explicitly.
var gatedModel = Config{CongestionControl: CongestionModel}

// TestBottleneckSingleFlow: one bulk session through a 20 Mbit/s
// bottleneck with a 50 ms tail-drop queue (10 ms each way). Once past
// startup, the wire carries at most 1.05x the goodput, at most 2 % of
// the session's packets are dropped at the queue, the link is used, and
// the receiver sends at most 0.55 ACK packets per data packet (ACK
// thinning).
func TestBottleneckSingleFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		warm, span := 3*time.Second, 4*time.Second
		if raceEnabled {
			warm, span = 2*time.Second, 2*time.Second
		}
		r := newBottleneckRig(t, 71, 1, netsim.BottleneckConfig{Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Delay: 10 * time.Millisecond}, gatedModel)
		time.Sleep(warm)
		got0, st0 := r.sample()
		srvPkts0 := r.srv[0].Session().Stats().PacketsSent
		cliPkts0 := r.cli[0].Session().Stats().PacketsSent
		time.Sleep(span)
		got1, st1 := r.sample()
		srvPkts := r.srv[0].Session().Stats().PacketsSent - srvPkts0
		cliPkts := r.cli[0].Session().Stats().PacketsSent - cliPkts0
		goodput := float64(got1[0] - got0[0])
		wire := float64(st1.EnqueuedBytes - st0.EnqueuedBytes + st1.DroppedBytes - st0.DroppedBytes)
		pkts := float64(st1.Enqueued - st0.Enqueued + st1.Dropped - st0.Dropped)
		drops := float64(st1.Dropped - st0.Dropped)
		sst := r.srv[0].Session().Stats()
		cong := sst.Congestion
		t.Logf("retransmissions %d, tail probes %d, packets %d", sst.Retransmissions, sst.TailProbes, sst.PacketsSent)
		t.Logf("goodput %.2f MB/s (link 2.5), wire/goodput %.3f, queue drops %.2f%% (%v), max queue delay %v, ACK packets per data packet %.3f; %+v",
			goodput/span.Seconds()/1e6, wire/goodput, 100*drops/pkts, drops, st1.MaxQueueDelay, float64(cliPkts)/float64(srvPkts), cong)
		// Issue 14 asks 1.05. Framing alone is 1.027 here (26 bytes of
		// transport and 12 of record header per 1472-byte packet; 1.042
		// with 33 and 24 bytes per 1400), and KCP retransmits up to 1-2 %
		// spuriously when ProbeBW_UP raises the RTT past its nodelay RTO:
		// measured 1.026-1.027 over five runs (1.028-1.033 at 1400;
		// 1.048-1.063 before the compact framing).
		require.LessOrEqual(t, wire/goodput, 1.05, "wire bytes per delivered byte")
		require.LessOrEqual(t, drops/pkts, 0.02, "queue drops")
		require.Greater(t, goodput/span.Seconds(), 0.8*2.5e6, "the link is used")
		require.LessOrEqual(t, float64(cliPkts)/float64(srvPkts), 0.55, "ACK packets per data packet")
	})
}

// TestBottleneckTwoFlowsShare: two sessions sharing one 20 Mbit/s
// bottleneck split it within 40/60 once both are past startup.
func TestBottleneckTwoFlowsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		warm, span := 4*time.Second, 8*time.Second
		if raceEnabled {
			warm, span = 3*time.Second, 4*time.Second
		}
		r := newBottleneckRig(t, 72, 2, netsim.BottleneckConfig{Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Delay: 10 * time.Millisecond}, gatedModel)
		time.Sleep(warm)
		got0, _ := r.sample()
		time.Sleep(span)
		got1, st := r.sample()
		a, b := float64(got1[0]-got0[0]), float64(got1[1]-got0[1])
		share := a / (a + b)
		t.Logf("shares %.1f%% / %.1f%%, together %.2f MB/s (link 2.5); queue drops %d of %d", 100*share, 100*(1-share), (a+b)/span.Seconds()/1e6, st.Dropped, st.Enqueued+st.Dropped)
		require.InDelta(t, 0.5, share, 0.1, "within 40/60")
		require.Greater(t, (a+b)/span.Seconds(), 0.8*2.5e6, "the link is used")
	})
}

// TestBottleneckRateStep: the bottleneck drops from 20 to 5 Mbit/s under a
// bulk session writing 16 KiB messages. The controller follows the step
// (its bandwidth estimate ends near 5 Mbit/s) and keeps the queue off its
// 50 ms tail-drop limit: from 1 s after the step, the median queueing
// delay stays below 40 ms and at most 1 % of the packets are dropped
// (before per-segment admission: 0.3-2.3 %; now 0 in every run measured).
// It logs when the queueing delay first falls under the base RTT (20 ms:
// the RTT under twice the base) and how often it stays there (median
// 8.5-12 ms in 19 of 20 runs, 34 ms in one; issue 14's 2 s settle, judged
// on the standing queue, is TestBottleneckStepDrain's).
func TestBottleneckRateStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const base = 20 * time.Millisecond
		step := 3 * time.Second
		r := newBottleneckRig(t, 73, 1, netsim.BottleneckConfig{
			Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Delay: base / 2,
			Schedule: []netsim.RateStep{{At: step, Rate: 5_000_000}},
		}, gatedModel)
		time.Sleep(step)
		first := time.Duration(-1)
		var late []time.Duration // samples from 1 s after the step
		var st1 netsim.BottleneckStats
		for at := time.Duration(0); at < 3*time.Second; at += 10 * time.Millisecond {
			q := r.bc.QueueDelay()
			if first < 0 && at > 0 && q < base {
				first = at
			}
			if at == time.Second {
				_, st1 = r.sample()
			}
			if at >= time.Second {
				late = append(late, q)
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, st2 := r.sample()
		slices.Sort(late)
		under := 0
		for _, q := range late {
			if q < base {
				under++
			}
		}
		median := late[len(late)/2]
		drops := float64(st2.Dropped-st1.Dropped) / float64(st2.Enqueued-st1.Enqueued+st2.Dropped-st1.Dropped)
		cong := r.srv[0].Session().Stats().Congestion
		t.Logf("queueing delay first under the base RTT %v after the step; from 1 s on: median %v, under the base RTT in %d of %d samples, drops %.2f%%; estimate %v",
			first, median, under, len(late), 100*drops, cong.Bandwidth)
		require.Less(t, median, 40*time.Millisecond, "the queue stays off its limit")
		require.LessOrEqual(t, drops, 0.01, "queue drops")
		require.InDelta(t, 5e6, float64(cong.Bandwidth.BitsPerSecond()), 1.5e6, "the estimate follows the step")
	})
}

// TestBottleneckAdaptiveFEC: through the same bottleneck, adaptive FEC
// sends no parity at all (no random loss: under a controller it starts at
// 0, and the loss of a queue overflowing does not raise it), and delivers
// as much as FEC off, over three network seeds, at the default packet size
// toward this IPv4 peer (1472): in every seed at least 0.998 of it, and in
// total at least 1-sameGoodputSpread of it.
//
// The stream is written in 1 KiB writes, so that what the reader counts
// moves by a segment, not by a 16 KiB message (one message is about 0.3 %
// of the 2.5 s measured, which made single runs read 0.998-1.002), and
// the count is read once the bubble is idle (synctest.Wait).
//
// At parity 0 adaptive FEC sends exactly the packets of FEC off, full-size
// segments without the FEC room (fec_sizing.go; TestFECSegmentSize asserts
// it datagram by datagram), plus two loss reports a second each way. The
// two runs are then the same system, and what is left between them is the
// spread of one run to the next: the goroutines of the bubble (reader,
// writer, the two endpoints' workers) interleave differently at each
// instant, and the controller's dynamics follow. Measured over 80 runs:
// FEC off alone 2.4007-2.4063 MB/s per seed, adaptive/off 0.9982-1.0019
// per seed and 0.9990-1.0009 in total (standard deviation 0.0004),
// centred on 1.0000: a comparison without margin failed in half the runs
// (4 of 10; 8 of 10 pinned at 1400). A longer window does not narrow it
// (from 1.5 s to 6.5 s: 0.9993-1.0006), and reaches BBR's ProbeRTT.
// Before, adaptive FEC kept the FEC room (13 bytes) in every segment:
// 0.9990-0.9995 per seed at 1472 (0.9987 in the bench), and at 1400, where
// the test was pinned, 1.0010-1.0034, the controller's dynamics favouring
// the smaller packets there.
func TestBottleneckAdaptiveFEC(t *testing.T) {
	// sameGoodputSpread is how far the total of three seeds of one system
	// may fall below another's in this test: more than 3 standard
	// deviations of the measured spread, and tighter than the per-seed
	// bound.
	const sameGoodputSpread = 0.0015
	goodput := func(seed uint64, fec FECConfig) float64 {
		var rate float64
		var parity uint64
		synctest.Test(t, func(t *testing.T) {
			cfg := gatedModel
			cfg.FEC = fec
			r := newStepRig(t, seed, 1<<10, 0, netsim.BottleneckConfig{Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Delay: 10 * time.Millisecond}, cfg)
			time.Sleep(1500 * time.Millisecond)
			synctest.Wait()
			got0 := r.got.Load()
			time.Sleep(2500 * time.Millisecond)
			synctest.Wait()
			got1, st := r.got.Load(), r.bc.Stats()
			rate = float64(got1-got0) / 2.5
			parity = r.srv.Session().Stats().FEC.ParityShardsSent
			t.Logf("seed %d, FEC %+v: %.4f MB/s, queue drops %d of %d, parity sent %d", seed, fec, rate/1e6, st.Dropped, st.Enqueued+st.Dropped, parity)
		})
		require.Zero(t, parity, "no parity without random loss")
		return rate
	}
	var offSum, adaptiveSum float64
	for seed := uint64(72); seed < 75; seed++ {
		off := goodput(seed, FECConfig{})
		adaptive := goodput(seed, FECConfig{DataShards: 10, MaxParity: 3, Adaptive: true})
		t.Logf("seed %d: adaptive/off %.4f", seed, adaptive/off)
		require.GreaterOrEqual(t, adaptive, 0.998*off, "seed %d: adaptive FEC does not cost goodput under a bottleneck", seed)
		offSum, adaptiveSum = offSum+off, adaptiveSum+adaptive
	}
	t.Logf("adaptive/off over the seeds %.4f", adaptiveSum/offSum)
	require.GreaterOrEqual(t, adaptiveSum, (1-sameGoodputSpread)*offSum, "adaptive FEC delivers as much as FEC off")
}

// TestCongestionGateDefault: every controller but CongestionNone gates,
// the zero value (CongestionModel) included. With CongestionNone a burst
// of 100 messages written in one instant goes into KCP at once, as before
// congestion control; with a gating controller only about the initial
// window (10 packets) does, the rest waits in the lanes' backlog for
// acknowledgements and the pacer. Every variant measures what is in
// flight.
func TestCongestionGateDefault(t *testing.T) {
	tests := []struct {
		name  string
		alg   CongestionControl
		gated bool
	}{
		{"zero", "", true},
		{"none", CongestionNone, false},
		{"model", CongestionModel, true},
		{"cubic", CongestionCubic, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := newSessionPairs(t, &Config{CongestionControl: tt.alg}, false)
			cli, _ := sp.add(t, []byte("hi"), true)
			now := time.Now()
			msg := make([]byte, 1000)
			for range 100 {
				_, err := cli.Write(msg)
				require.NoError(t, err)
			}
			cli.pump(now)
			admitted := int(cli.arq.View(0).SndSN)
			t.Logf("%s: %d of 100 segments in KCP, %d bytes in flight", tt.name, admitted, cli.arq.BytesInFlight())
			require.Equal(t, tt.gated, cli.cong.gated)
			if tt.gated {
				require.GreaterOrEqual(t, admitted, 10, "the initial window goes at once")
				require.Less(t, admitted, 20, "the rest waits for the window")
			} else {
				require.GreaterOrEqual(t, admitted, 100, "nothing is held back")
			}
			require.Positive(t, cli.arq.BytesInFlight(), "in flight is measured")
		})
	}
}

// TestDatagramPacing: under a gating controller, datagrams beyond the
// pacer's tokens wait in a queue of at most 64; when it overflows,
// latest-only datagrams are dropped first; one that waited 50 ms is
// dropped; every drop is counted, and every datagram is either sent or
// counted as dropped.
func TestDatagramPacing(t *testing.T) {
	sp := newSessionPairs(t, &Config{CongestionControl: CongestionModel}, false)
	cli, _ := sp.add(t, []byte("hi"), true)
	now := time.Now()
	cli.shard.now = now
	msg := make([]byte, 1000)
	for range 100 {
		require.NoError(t, cli.WriteDatagramLatest(1, msg))
	}
	for range 100 {
		require.NoError(t, cli.WriteDatagram(msg))
	}
	cli.pump(now)
	st := cli.Stats().Datagrams
	t.Logf("at once: sent %d, dropped %d, queued %d", st.Sent, st.Dropped, len(cli.cong.dq))
	require.Positive(t, st.Sent, "the pacer's burst goes at once")
	require.Len(t, cli.cong.dq, dgramQueueMax)
	for _, q := range cli.cong.dq {
		require.Equal(t, byte(pendDatagram), q.kind, "latest-only datagrams are dropped first")
	}
	require.EqualValues(t, 200, st.Sent+st.Dropped+uint64(len(cli.cong.dq)))
	later := now.Add(dgramMaxWait)
	cli.shard.now = later
	cli.onTimer(later)
	st = cli.Stats().Datagrams
	t.Logf("after %v: sent %d, dropped %d, queued %d", dgramMaxWait, st.Sent, st.Dropped, len(cli.cong.dq))
	require.Empty(t, cli.cong.dq, "nothing waits longer than dgramMaxWait")
	require.EqualValues(t, 200, st.Sent+st.Dropped)
}

// TestDatagramPriority: datagrams wait for the pacer's priority bucket
// only, not behind the debt that bursts of other packets left (FEC parity,
// retransmissions, charged when sent): behind 300 ms of such debt a burst
// of small datagrams goes at once, and the debt still holds the reliable
// data. Beyond the bucket, and while reliable data waits, they wait at
// half the rate (cc.PacerPriorityShare). Behind a debt that datagrams could
// pass only in part, an application-limited session with 10+3 FEC at 10 %
// loss dropped datagrams after 50 ms in 55-70 % of TestDatagramsUnderLoss
// runs.
func TestDatagramPriority(t *testing.T) {
	const rate = 100e3 // bytes/s: MaxBandwidth caps the controller's pacing
	sp := newSessionPairs(t, &Config{CongestionControl: CongestionModel, MaxBandwidth: 800 * KilobitPerSecond}, false)
	cli, _ := sp.add(t, []byte("hi"), true)
	now := time.Now()
	cli.shard.now = now
	cli.pump(now)
	require.InDelta(t, rate, float64(cli.cong.pacer.Rate()), 0.01*rate)
	cli.cong.pacer.Charge(now, 30_000) // a burst of retransmissions
	for range 10 {
		require.NoError(t, cli.WriteDatagram(make([]byte, 100)))
	}
	cli.pump(now)
	st := cli.Stats().Datagrams
	require.EqualValues(t, 10, st.Sent, "small datagrams pass the debt")
	require.Empty(t, cli.cong.dq)
	require.Greater(t, cli.cong.pacer.TimeUntilSend(now, cli.mtu), 250*time.Millisecond, "the debt still holds other packets")

	// Beyond the priority bucket (the pacer's quantum, two packets) with a
	// message waiting for the pacer, datagrams of 1000 bytes leave at half
	// the rate (about 25 in 500 ms, after what is left of the bucket), the
	// rest dropped after 50 ms.
	_, err := cli.Write(make([]byte, 4000))
	require.NoError(t, err)
	sent0 := st.Sent
	for i := range 100 {
		at := now.Add(time.Duration(i) * 5 * time.Millisecond)
		cli.shard.now = at
		require.NoError(t, cli.WriteDatagram(make([]byte, 1000)))
		cli.pump(at)
	}
	later := now.Add(600 * time.Millisecond)
	cli.shard.now = later
	cli.onTimer(later)
	st = cli.Stats().Datagrams
	t.Logf("sent %d, dropped %d", st.Sent-sent0, st.Dropped)
	require.EqualValues(t, 100, st.Sent-sent0+st.Dropped, "every datagram sent or counted dropped")
	require.Empty(t, cli.cong.dq)
	require.InDelta(t, 0.5*rate*0.5/1040+2, float64(st.Sent-sent0), 3, "half the rate, after the bucket")
}

// TestGameStreamNotPaced: a 60 Hz game stream of 200-byte messages, far
// below any budget, is never delayed by the default controller's pacing
// or window: over a path of 10 ms each way, every message, reliable or
// datagram (or one of each per tick), arrives exactly one path delay after
// it was written (synctest's clock), for 5 s, through the controller's
// startup and its bandwidth probing, as with CongestionNone. At this rate
// the model's estimate, and so the pacing rate, is the stream's own (a
// few kB/s): what lets a tick out at once is the pacer's quantum of at
// least 2 packets.
func TestGameStreamNotPaced(t *testing.T) {
	tests := []struct {
		name            string
		alg             CongestionControl
		maxBW           Bandwidth
		reliable, dgram bool
	}{
		{"default/reliable", "", 0, true, false},
		{"default/datagram", "", 0, false, true},
		{"default/both", "", 0, true, true},
		// Paced at 50 kB/s, twice the stream: the pacing rate is low, the
		// stream still far below it.
		{"default capped at 400 kbit/s/both", "", 400 * KilobitPerSecond, true, true},
		{"none/both", CongestionNone, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const ticks, delay = 300, 10 * time.Millisecond
				cfg := &Config{CongestionControl: tt.alg, MaxBandwidth: tt.maxBW}
				p := newSimPair(t, 81, cfg, cfg, false)
				rec := serverRecorder(p)
				p.net.SetDefault(netsim.Impairment{Delay: delay})
				require.NoError(t, p.cli.Start(context.Background()))
				conn := p.cli.Conn()
				for i := range ticks {
					if tt.reliable {
						_, err := conn.Write(stampedMessage(i, 200))
						require.NoError(t, err)
					}
					if tt.dgram {
						require.NoError(t, conn.WriteDatagram(stampedMessage(i, 200)))
					}
					time.Sleep(time.Second / 60)
				}
				time.Sleep(100 * time.Millisecond)
				msgs, dgrams := rec.snapshot()
				check := func(kind string, evs []laneEvent) {
					require.Len(t, evs, ticks, "every %s arrives", kind)
					for i, e := range evs {
						require.Equal(t, i, stampIndex(e.data), "%s %d in order", kind, i)
						require.Equal(t, delay, stampLatency(e), "%s %d is not delayed", kind, i)
					}
				}
				if tt.reliable {
					check("message", msgs)
				}
				if tt.dgram {
					check("datagram", dgrams)
				}
				st := conn.Stats()
				t.Logf("%+v", st.Congestion)
				require.Zero(t, st.Datagrams.Dropped)
				if tt.alg == "" {
					require.Equal(t, CongestionModel, st.Congestion.Algorithm)
					require.Positive(t, st.Congestion.PacingRate, "paced")
					require.Positive(t, st.Congestion.CongestionWindow)
				}
			})
		})
	}
}
