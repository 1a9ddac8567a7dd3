package uxp

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/arq"
	"github.com/uxp-go/uxp/internal/netsim"
)

// dropNextLane returns a dropLane hook that drops the lane frame sent
// after arm is set, and only that one.
func dropNextLane(arm *atomic.Bool) func(int, []byte) bool {
	return func(int, []byte) bool { return arm.CompareAndSwap(true, false) }
}

// probeWarmup sends n messages 10 ms apart, so that the session has data
// RTT samples, and waits until the server has them all.
func probeWarmup(t *testing.T, p *simPair, n int) {
	conn := p.cli.Conn()
	for i := range n {
		writeRetry(t, conn, testMessage(i, 100))
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	_, got, _ := p.srvH.handler(0).snapshot()
	require.Len(t, got, n)
}

// lostLoneMessage warms up a session pair (seed) on a path of oneWay
// delay, then writes one message whose only packet is dropped, and
// returns how long it took to arrive and the client's stats around it.
// It checks that the packet was dropped and that one tail-loss probe
// recovered it.
func lostLoneMessage(t *testing.T, seed uint64, oneWay time.Duration) (took time.Duration, before, after ConnStats) {
	var arm atomic.Bool
	cli := &Config{}
	hooksOf(cli).dropLane = dropNextLane(&arm)
	p := newSimPair(t, seed, &Config{}, cli, true)
	p.net.SetDefault(netsim.Impairment{Delay: oneWay})
	const warm = 20
	probeWarmup(t, p, warm)
	conn := p.cli.Conn()
	before = conn.Stats()

	arm.Store(true)
	start := time.Now()
	writeRetry(t, conn, testMessage(warm, 100))
	h := p.srvH.handler(0)
	for {
		<-h.gotMsg
		if _, got, _ := h.snapshot(); len(got) == warm+1 {
			break
		}
	}
	took = time.Since(start)
	after = conn.Stats()
	require.False(t, arm.Load(), "the message's packet was dropped")
	require.EqualValues(t, 1, after.TailProbes-before.TailProbes)
	return took, before, after
}

// TestTailProbeRecoversLoss: on a 2 ms path, a lone message whose only
// packet is lost arrives one probe timeout later (about 4 ms), not after
// KCP's retransmission timeout (at least 30 ms in no-delay mode).
func TestTailProbeRecoversLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		took, before, after := lostLoneMessage(t, 31, time.Millisecond)
		require.EqualValues(t, 1, after.Retransmissions-before.Retransmissions, "only the probe resent it")
		require.Less(t, took, 10*time.Millisecond, "recovered by the probe, not KCP's 30 ms timeout")
		require.Greater(t, took, 2*time.Millisecond, "a probe waits for at least the RTT")
		t.Logf("lost message delivered after %v", took)
	})
}

// TestTailProbeShortPath: on a sub-millisecond path (the loopback or LAN
// class of the loss benchmark), a lone message whose only packet is lost
// arrives within srtt + probeGranularity (RFC 9002's 1 ms), plus the
// timer heap's rounding to its slot (timerCoalesce) and the one-way delay:
// not 2-3 ms later, as with the 2 ms granularity this replaced, which put
// every doubly lost request/response at 5-8 ms.
func TestTailProbeShortPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 20 * time.Microsecond
		took, _, _ := lostLoneMessage(t, 34, oneWay)
		require.LessOrEqual(t, took, 2*oneWay+time.Millisecond+timerCoalesce+oneWay,
			"a probe fires one PTO (srtt + 1 ms, rounded up to the timer slot) after the lost send")
		require.Greater(t, took, time.Millisecond, "a probe waits for the granularity")
		t.Logf("lost message delivered after %v", took)
	})
}

// TestTailProbeLostAck: the receiver's ACK is lost; the sender's probe
// draws a fresh one and the message is still delivered exactly once.
func TestTailProbeLostAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var arm atomic.Bool
		srv := &Config{}
		hooksOf(srv).dropLane = dropNextLane(&arm)
		p := newSimPair(t, 32, srv, &Config{}, true)
		p.net.SetDefault(netsim.Impairment{Delay: time.Millisecond})
		const warm = 20
		probeWarmup(t, p, warm)
		conn := p.cli.Conn()
		before := conn.Stats()

		arm.Store(true)
		writeRetry(t, conn, testMessage(warm, 100))
		time.Sleep(50 * time.Millisecond)
		require.False(t, arm.Load(), "the server's ACK was dropped")
		after := conn.Stats()
		require.EqualValues(t, 1, after.TailProbes-before.TailProbes)
		require.Zero(t, after.SendQueueBytes, "the probe's ACK confirmed the message")
		_, got, _ := p.srvH.handler(0).snapshot()
		require.Len(t, got, warm+1, "delivered exactly once")
		for i, m := range got {
			require.True(t, bytes.Equal(testMessage(i, 100), m), "message %d", i)
		}
	})
}

// TestTailProbeBounded: with the peer gone silent, a lane sends at most
// arq.MaxTailProbes probes, at a doubling interval, and leaves the rest to
// KCP's timeout.
func TestTailProbeBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 33, &Config{}, &Config{}, true)
		p.net.SetDefault(netsim.Impairment{Delay: time.Millisecond})
		probeWarmup(t, p, 20)
		conn := p.cli.Conn()
		before := conn.Stats()
		p.net.SetDefault(netsim.Impairment{Loss: 1})
		writeRetry(t, conn, testMessage(20, 100))
		time.Sleep(time.Second)
		after := conn.Stats()
		require.EqualValues(t, arq.MaxTailProbes, after.TailProbes-before.TailProbes)
		require.Greater(t, after.Retransmissions-before.Retransmissions, uint64(arq.MaxTailProbes), "KCP's timeout still resends")
	})
}

// TestAdaptiveFECShortPath: on a 2 ms path with 10% loss each way, adaptive
// FEC sends no parity for sparse messages, because a probe repairs a loss
// sooner than a partial group's parity (sent after the 20 ms group delay)
// would; every message still arrives, with a p95 far below KCP's timeout.
func TestAdaptiveFECShortPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fecCfg := FECConfig{DataShards: 10, ParityShards: 3, MaxParity: 6, Adaptive: true}
		p := newSimPair(t, 34, &Config{FEC: fecCfg}, &Config{FEC: fecCfg}, true)
		p.net.SetDefault(netsim.Impairment{Delay: time.Millisecond, Loss: 0.1})
		conn := p.cli.Conn()
		const n = 500
		var start FECStats
		for i := range n {
			if i == 100 {
				// One second: the first loss reports have arrived; the
				// parity before them is the configured starting value.
				start = conn.Stats().FEC
			}
			writeRetry(t, conn, testMessage(i, 1024))
			time.Sleep(10 * time.Millisecond)
		}
		require.InDelta(t, 0.1, conn.Stats().LossOut, 0.08, "the peer reports the loss it sees")
		time.Sleep(time.Second)
		_, got, _ := p.srvH.handler(0).snapshot()
		require.Len(t, got, n)
		for i, m := range got {
			require.True(t, bytes.Equal(testMessage(i, 1024), m), "message %d", i)
		}
		st := conn.Stats()
		require.Zero(t, st.FEC.Parity, "no parity on a short path")
		overhead := float64(st.FEC.ParityShardsSent-start.ParityShardsSent) / float64(st.FEC.DataShardsSent-start.DataShardsSent)
		require.Less(t, overhead, 0.05, "parity overhead")
		require.Positive(t, st.TailProbes)
		// About 19% of messages lose their packet or its ACK: without
		// probes they wait for KCP's 30 ms timeout, which would be the p95.
		p95, p99 := st.Latency.Quantile(0.95), st.Latency.Quantile(0.99)
		require.Less(t, p95, 15*time.Millisecond, "losses repaired by probes, not KCP's 30 ms timeout")
		t.Logf("parity overhead %.3f, probes %d, retransmissions %d, latency p50 %v p95 %v p99 %v",
			overhead, st.TailProbes, st.Retransmissions, st.Latency.Quantile(0.5), p95, p99)
	})
}

// TestWindowProbeLostUpdate: a reader pauses until the sender's window is
// closed, then reads again, and the one window update that reopens it is
// lost. The sender's own window probes find the open window within about a
// second, where KCP alone would wait for its next probe, 7.4 s later.
func TestWindowProbeLostUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dropped atomic.Int32
		srv := &Config{}
		hooksOf(srv).dropLane = func(_ int, segs []byte) bool {
			for p := segs; len(p) >= kcpOverhead; p = p[kcpOverhead+int(binary.LittleEndian.Uint32(p[20:24])):] {
				if p[4] == kcp.IKCP_CMD_WINS && binary.LittleEndian.Uint16(p[6:8]) > 0 {
					return dropped.CompareAndSwap(0, 1)
				}
			}
			return false
		}
		p := newStreamPair(t, 35, netsim.Impairment{Delay: 5 * time.Millisecond}, srv, nil)
		data := testMessage(35, 4<<20)
		go func() {
			_, _ = p.cli.Write(data)
		}()
		// The receive buffer and KCP's window fill; the reader stays away
		// long enough for KCP's own window probes (500 ms, growing by
		// half each time) to be 13 s apart.
		time.Sleep(30 * time.Second)
		st := p.cli.Session().Stats()
		require.Positive(t, st.SendQueueBytes, "the writer is blocked by the closed window")

		start := time.Now()
		got := make([]byte, len(data))
		_, err := io.ReadFull(p.srv, got)
		require.NoError(t, err)
		took := time.Since(start)
		require.True(t, bytes.Equal(data, got), "data mismatch")
		require.EqualValues(t, 1, dropped.Load(), "the reopening window update was dropped")
		require.Less(t, took, 3*time.Second, "the sender found the open window by its own probes, not KCP's next one")
		require.Positive(t, p.cli.Session().Stats().WindowProbes)
		t.Logf("read 4 MiB in %v after the lost window update; %d window probes", took, p.cli.Session().Stats().WindowProbes)
	})
}
