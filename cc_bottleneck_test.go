package uxp

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// stepRig is one bulk stream from a server through a netsim bottleneck to
// a client, written in writes of a given size (bottleneckRig writes 16 KiB
// only), with random loss in both directions. Run inside a synctest
// bubble.
type stepRig struct {
	bc       *netsim.BottleneckConn
	srv, cli *StreamConn
	got      atomic.Int64
}

func newStepRig(t *testing.T, seed uint64, write int, loss float64, bcfg netsim.BottleneckConfig, cfg Config) *stepRig {
	t.Helper()
	path := netsim.Impairment{Delay: bcfg.Delay, Loss: loss} // the ACKs' direction; loss both ways
	bcfg.Delay = 0
	return newBulkRig(t, seed, write, path, nil, bcfg, cfg)
}

// newBulkRig builds a stepRig: the network's default impairment is path;
// edge, if not nil, is added at both endpoints' sockets, on the server's
// before its bottleneck's queue (where the bench's router drops).
func newBulkRig(t *testing.T, seed uint64, write int, path netsim.Impairment, edge *netsim.Impairment, bcfg netsim.BottleneckConfig, cfg Config) *stepRig {
	t.Helper()
	nw := netsim.NewNetwork(seed)
	t.Cleanup(func() { nw.Close() })
	nw.SetDefault(path)
	kp := testKeys(t)
	spc, err := nw.Listen("10.0.0.1:4000")
	require.NoError(t, err)
	r := &stepRig{bc: netsim.NewBottleneckConn(spc, bcfg)}
	var srvPC net.PacketConn = r.bc
	if edge != nil {
		srvPC = netsim.Wrap(r.bc, *edge, seed+1)
	}
	scfg := cfg
	scfg.PrivateKey = kp.Private
	ln, err := Listen(srvPC, &scfg)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	cpc, err := nw.Listen("10.0.1.1:5000")
	require.NoError(t, err)
	var cliPC net.PacketConn = cpc
	if edge != nil {
		cliPC = netsim.Wrap(cpc, *edge, seed+2)
	}
	ccfg := cfg
	ccfg.ServerPublicKey = kp.Public
	r.cli, err = DialConnOver(context.Background(), cliPC, spc.LocalAddr(), &ccfg)
	require.NoError(t, err)
	t.Cleanup(func() { r.cli.Close() })
	srv, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	r.srv = srv.(*StreamConn)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := r.cli.Read(buf)
			r.got.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	go func() {
		chunk := testMessage(1, write)
		for {
			if _, err := r.srv.Write(chunk); err != nil {
				return
			}
		}
	}()
	return r
}

// TestBottleneckStepDrain is issue 14's reaction target in a session: a
// bulk stream through a 20 Mbit/s bottleneck (50 ms tail-drop queue, 20 ms
// base RTT) whose rate drops to 5 Mbit/s at 3 s. The target: within 2 s
// of the drop the queueing delay is back under the base RTT (the RTT
// under twice the base).
//
// The queueing delay is sampled every millisecond, and what is judged is
// its smallest value in each base RTT (20 ms window), the standing queue:
// what the controller's model controls. On top of it every message the
// gate admits leaves as one burst. The test logs when the standing queue
// was last at or above the base RTT and asserts that from 2 s after the
// drop it is under the base RTT in every window, in writes of 1 KiB and
// of 16 KiB, over several network seeds and clock phases (the offset of
// the run from the shard's millisecond timer slots).
//
// The gate admits per segment (internal/arq sendlimit.go): a 16 KiB
// message no longer leaves as a 13-packet burst (26 ms of the 5 Mbit/s
// link) but by the pacer's quantum within the window, and a spurious
// retransmission timeout raises the lane's KCP timeout floor
// (internal/arq Config.SpuriousRTOFloor, on under a gating controller).
//
// Until the receiver's KCP interval tick stopped sending the ACKs the
// thinning policy holds (internal/arq timers.go ackHeld), the standing
// queue was above the base RTT in 2-47 of the 150 windows from +2 s with
// 16 KiB writes (median 7) and 0-19 with 1 KiB writes: a lone full-size
// segment acknowledged late on the tick began delivery-rate samples whose
// interval was cut by up to a packet's time at the bottleneck, the
// bandwidth estimate (a maximum over the samples) ran 5-9 % above the
// link, and each ProbeBW_UP rose on the standing queue that built. Now the
// estimate is the link's 5 Mbit/s, and no window is late in any case.
func TestBottleneckStepDrain(t *testing.T) {
	tests := []struct {
		name  string
		write int
		seed  uint64
		phase time.Duration // offset of the run from the millisecond grid
	}{
		{"1 KiB writes", 1 << 10, 75, 0},
		{"1 KiB writes, seed 77, phase 0.37 ms", 1 << 10, 77, 370 * time.Microsecond},
		{"16 KiB writes", 16 << 10, 75, 0},
		{"16 KiB writes, seed 76, phase 0.37 ms", 16 << 10, 76, 370 * time.Microsecond},
		{"16 KiB writes, seed 77, phase 0.71 ms", 16 << 10, 77, 710 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := runStepDrain(t, tt.write, tt.seed, tt.phase)
				require.Zero(t, r.late, "standing queue under the base RTT from 2 s after the drop")
				require.Greater(t, r.goodput, 0.6, "the session keeps using the 5 Mbit/s link")
				require.LessOrEqual(t, r.drops, 0.02, "queue drops")
			})
		})
	}
}

// stepDrain is what runStepDrain measured.
type stepDrain struct {
	settle  time.Duration // end of the last window with a standing queue >= the base RTT, from the drop
	late    int           // such windows from 2 s after the drop on
	windows int           // windows from 2 s after the drop on
	goodput float64       // of the 5 Mbit/s link, over the 5 s after the drop
	drops   float64       // queue drops per packet from 1 s after the drop on
}

// runStepDrain runs TestBottleneckStepDrain's scenario with writes of
// write bytes on network seed seed, started phase after a millisecond
// boundary of the bubble's clock, and logs and returns what it measured.
// Run inside a synctest bubble.
func runStepDrain(t *testing.T, write int, seed uint64, phase time.Duration) stepDrain {
	t.Helper()
	const (
		base   = 20 * time.Millisecond
		window = base
		tick   = time.Millisecond
		watch  = 5 * time.Second
		step   = 3 * time.Second
	)
	time.Sleep(phase)
	r := newStepRig(t, seed, write, 0, netsim.BottleneckConfig{
		Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Delay: base / 2,
		Schedule: []netsim.RateStep{{At: step, Rate: 5_000_000}},
	}, gatedModel)
	time.Sleep(step)
	got0 := r.got.Load()
	retr0 := r.srv.Session().Stats().Retransmissions
	var st0 netsim.BottleneckStats
	var mins []time.Duration // standing queue per window
	var inst []time.Duration // every tick, from 2 s after the drop
	cur := time.Duration(-1)
	for at := time.Duration(0); at < watch; at += tick {
		if at == time.Second {
			st0 = r.bc.Stats()
		}
		q := r.bc.QueueDelay()
		if cur < 0 || q < cur {
			cur = q
		}
		if (at+tick)%window == 0 {
			mins = append(mins, cur)
			cur = -1
		}
		if at >= 2*time.Second {
			inst = append(inst, q)
		}
		time.Sleep(tick)
	}
	st1, got1 := r.bc.Stats(), r.got.Load()
	retr := r.srv.Session().Stats().Retransmissions - retr0
	spur := r.srv.Session().arq.Spurious()
	var res stepDrain
	for i, m := range mins {
		end := time.Duration(i+1) * window
		if m >= base {
			res.settle = end
		}
		if end > 2*time.Second {
			res.windows++
			if m >= base {
				res.late++
			}
		}
	}
	slices.Sort(inst)
	pct := func(p int) time.Duration { return inst[(len(inst)-1)*p/100] }
	res.drops = float64(st1.Dropped-st0.Dropped) / float64(st1.Enqueued-st0.Enqueued+st1.Dropped-st0.Dropped)
	res.goodput = float64(got1-got0) / watch.Seconds() / (5e6 / 8)
	cong := r.srv.Session().Stats().Congestion
	t.Logf("standing queue last at or above the base RTT %v after the drop; from +2 s in %d of %d windows; queueing delay from +2 s: p50 %v p90 %v p99 %v; goodput %.3f of 5 Mbit/s; queue drops from +1 s %.2f%% (%d); retransmissions %d (spurious in the whole run %d); estimate %v",
		res.settle, res.late, res.windows, pct(50), pct(90), pct(99), res.goodput, 100*res.drops, st1.Dropped-st0.Dropped, retr, spur, cong.Bandwidth)
	return res
}

// TestBottleneckLoss is issue 14's bottleneck-loss case in netsim: a bulk
// stream through a 20 Mbit/s bottleneck (50 ms tail-drop queue, 20 ms base
// RTT) with 5 % random loss in both directions, after the bottleneck on
// the data's way. Once past startup the session keeps the link busy (at
// least 0.92 of the bytes the link can carry enter its queue; measured
// 0.95-0.97), delivers at least 0.83 of the link's rate (0.87 is what a 5
// % loss of the packets leaves of the 0.92 the framing leaves; measured
// 0.86-0.88), resends at most 6 % of its packets (5 % are lost; measured
// 4.9-5.3 %) and loses at most 1 % at the queue (measured none). Before the stream stopped counting the bytes behind
// a hole as its queue (stream_send.go overTime) its writer stalled after
// every loss burst: 0.79 of the link, 90 % of its packets.
func TestBottleneckLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			rate  = 20_000_000
			watch = 5 * time.Second
		)
		r := newStepRig(t, 76, 16<<10, 0.05, netsim.BottleneckConfig{
			Rate: rate, QueueDelay: 50 * time.Millisecond, Delay: 10 * time.Millisecond,
		}, gatedModel)
		time.Sleep(2 * time.Second)
		got0, st0, s0 := r.got.Load(), r.bc.Stats(), r.srv.Session().Stats()
		time.Sleep(watch)
		got1, st1, s1 := r.got.Load(), r.bc.Stats(), r.srv.Session().Stats()
		pkts := st1.Enqueued - st0.Enqueued
		bytes := st1.EnqueuedBytes - st0.EnqueuedBytes
		busy := float64(bytes*8) / (rate * watch.Seconds())
		goodput := float64(got1-got0) * 8 / (rate * watch.Seconds())
		retr := float64(s1.Retransmissions-s0.Retransmissions) / float64(pkts)
		t.Logf("link busy %.3f, goodput %.3f of the link, %d packets, %.2f%% resent, queue drops %d; %+v",
			busy, goodput, pkts, 100*retr, st1.Dropped-st0.Dropped, s1.Congestion)
		require.GreaterOrEqual(t, busy, 0.92, "the link stays busy")
		require.GreaterOrEqual(t, goodput, 0.83, "goodput of the link")
		require.LessOrEqual(t, retr, 0.06, "retransmissions per packet")
		require.LessOrEqual(t, float64(st1.Dropped-st0.Dropped), 0.01*float64(pkts), "queue drops")
	})
}
