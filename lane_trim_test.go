package uxp

import (
	"bytes"
	"context"
	"encoding/binary"
	"github.com/uxp-go/uxp/internal/arq"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/netsim"
)

const kcpRingEntries = kcpx.RingEntries

// kcpMinEntries is the capacity past which a KCP's lists, and a lane's
// inflight list, count as grown.
const kcpMinEntries = kcpx.MinEntries

// testKCP reads KCPs' state for tests (a factory of no shard).
var testKCP = kcpx.NewFactory(kcpx.Options{Tune: func(*kcp.KCP) {}})

// viewKCP is what internal/kcpx manages in one KCP.
func viewKCP(t testing.TB, k *kcp.KCP) kcpx.View {
	t.Helper()
	v, ok := kcpx.Inspect(k)
	require.True(t, ok, "kcp-go layout not resolved")
	return v
}

// TestKCPMemShared: a lane's new KCP starts with 2-entry rings and its
// shard's flush buffer, one for all the shard's sessions; with the
// memory tricks off, kcp-go's own 64-entry rings and buffers.
func TestKCPMemShared(t *testing.T) {

	for _, kcpDefault := range []bool{false, true} {
		sp := newSessionPairs(t, &Config{}, kcpDefault)
		msg := []byte("hello")
		cli1, srv1 := sp.add(t, msg, true)
		cli2, srv2 := sp.add(t, msg, true)
		for _, side := range [][2]*Conn{{cli1, cli2}, {srv1, srv2}} {
			a, b := viewKCP(t, side[0].arq.View(0).KCP), viewKCP(t, side[1].arq.View(0).KCP)
			// kcp-go's own buffer is for the packet size in use (pmtud.go);
			// the shard's serves every size up to the configured one.
			want := (side[0].ep.set.kcpMTU() + kcp.IKCP_OVERHEAD) * 3
			if kcpDefault {
				want = (side[0].kcpMTU() + kcp.IKCP_OVERHEAD) * 3
			}
			require.Equal(t, want, a.BufLen, "the flush buffer keeps kcp-go's size")
			require.Equal(t, want, b.BufLen)
			if kcpDefault {
				require.Equal(t, [3]int{64, 64, 64}, a.Rings)
				require.NotSame(t, a.Buf, b.Buf, "kcp-go's own buffer per KCP")
				continue
			}
			require.Equal(t, [3]int{kcpRingEntries, kcpRingEntries, kcpRingEntries}, a.Rings)
			require.Equal(t, [3]int{kcpRingEntries, kcpRingEntries, kcpRingEntries}, b.Rings)
			shared := side[0].shard.kcp.FlushBuf()
			require.Same(t, side[0].shard, side[1].shard)
			require.Same(t, &shared[0], a.Buf, "the shard's buffer")
			require.Same(t, a.Buf, b.Buf, "one buffer for the shard's sessions")
		}
	}
}

// memPair drives one session pair of a sessionPairs by hand, with the
// time given, and records what each side receives.
type memPair struct {
	sp         *sessionPairs
	cli, srv   *Conn
	cliH, srvH *recordConn
}

func newMemPair(t testing.TB, alg CongestionControl) *memPair {
	sp := newSessionPairs(t, &Config{CongestionControl: alg}, false)
	cli, srv := sp.add(t, []byte("hi"), true)
	p := &memPair{sp: sp, cli: cli, srv: srv, cliH: newRecordConn(), srvH: newRecordConn()}
	cli.SetHandler(p.cliH)
	srv.SetHandler(p.srvH)
	return p
}

// exchange runs both sides at now, each timer included, until nothing
// more is sent.
func (p *memPair) exchange(now time.Time) {
	sp := p.sp
	for range 1000 {
		p.cli.pump(now)
		if !p.cli.deadline.After(now) {
			p.cli.onTimer(now)
		}
		p.cli.shard.flushSends()
		toSrv := sp.cliOut.take()
		feed(p.srv, toSrv, sp.cliAP, now)
		p.srv.pump(now)
		if !p.srv.deadline.After(now) {
			p.srv.onTimer(now)
		}
		p.srv.shard.flushSends()
		toCli := sp.srvOut.take()
		feed(p.cli, toCli, sp.srvAP, now)
		if len(toSrv) == 0 && len(toCli) == 0 {
			return
		}
	}
	panic("exchange did not settle")
}

// wait moves both sides to now through their timers, as the shard does
// when a session's deadline passes.
func (p *memPair) wait(now time.Time) {
	for _, c := range []*Conn{p.cli, p.srv} {
		if !c.deadline.IsZero() && !c.deadline.After(now) {
			c.onTimer(now)
		} else {
			c.reschedule(now)
		}
	}
	p.exchange(now)
}

// burst writes n messages of size bytes from the client and returns them.
func (p *memPair) burst(t testing.TB, n, size int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = make([]byte, size)
		for j := range msgs[i] {
			msgs[i][j] = byte(r.Uint32())
		}
		_, err := p.cli.Write(msgs[i])
		require.NoError(t, err)
	}
	return msgs
}

// TestKCPMemTrim: a burst grows the lane's KCP past its 2-entry rings
// (and its ACK list and inflight list past their minimum); once the lane
// has been quiet for arq.TrimDelay, with no other traffic, the session's
// own timer gives the memory back, not earlier, and any activity in the
// meantime restarts the delay. After a trim the lane carries bursts as
// before, exactly.
func TestKCPMemTrim(t *testing.T) {
	// CongestionNone: the test puts bursts of 100-200 segments in flight
	// at one instant of a clock it drives by hand, to grow KCP's rings; a
	// congestion window (10 packets at first) and pacing forbid that by
	// design, and what is tested is KCP's memory, not the gate.
	p := newMemPair(t, CongestionNone)
	t0 := time.Now()
	var want [][]byte
	want = append(want, p.burst(t, 100, 1000, 1)...)
	p.cli.pump(t0)
	cliK, srvK := p.cli.arq.View(0).KCP, p.srv.arq.View(0).KCP
	require.Greater(t, viewKCP(t, cliK).Rings[2], 8, "100 segments in flight: snd_buf grew past 8")
	p.exchange(t0)
	_, got, _ := p.srvH.snapshot()
	require.Equal(t, want, got)
	require.True(t, testKCP.Quiet(cliK) && testKCP.Quiet(srvK), "everything acknowledged")
	require.True(t, testKCP.Grown(cliK), "still holding the burst's memory")
	require.Greater(t, viewKCP(t, srvK).AckCap, kcpMinEntries, "the receiver's ACK list grew")
	require.Greater(t, p.cli.arq.View(0).InflightCap, kcpMinEntries)
	require.False(t, p.cli.deadline.After(t0.Add(arq.TrimDelay)), "the trim is on the session's timer")

	p.wait(t0.Add(arq.TrimDelay - time.Millisecond))
	require.True(t, testKCP.Grown(cliK), "trimmed before the lane was quiet for arq.TrimDelay")
	p.wait(t0.Add(arq.TrimDelay))
	for _, c := range []*Conn{p.cli, p.srv} {
		v := viewKCP(t, c.arq.View(0).KCP)
		require.Equal(t, [3]int{kcpRingEntries, kcpRingEntries, kcpRingEntries}, v.Rings)
		require.LessOrEqual(t, v.HeapCap, kcpMinEntries)
		require.LessOrEqual(t, v.AckCap, kcpMinEntries)
		require.LessOrEqual(t, c.arq.View(0).InflightCap, kcpMinEntries)
		require.LessOrEqual(t, c.arq.View(0).TrackerSlots, arq.TrackerMinSlots)
		require.False(t, testKCP.Grown(c.arq.View(0).KCP))
		require.False(t, c.arq.View(0).TrimArmed, "nothing left to trim: disarmed")
	}

	// Activity restarts the delay: a message at t1+600ms, quiet again at
	// once, so the trim comes at t1+1600ms, not t1+1s.
	t1 := t0.Add(5 * time.Second)
	want = append(want, p.burst(t, 50, 3000, 2)...)
	p.exchange(t1)
	require.True(t, testKCP.Grown(cliK))
	want = append(want, p.burst(t, 1, 10, 3)...)
	p.exchange(t1.Add(600 * time.Millisecond))
	p.wait(t1.Add(arq.TrimDelay))
	require.True(t, testKCP.Grown(cliK), "the message at +600ms restarted the delay")
	p.wait(t1.Add(600*time.Millisecond + arq.TrimDelay))
	require.False(t, testKCP.Grown(cliK))

	// And the trimmed rings grow again for the next burst.
	t2 := t1.Add(5 * time.Second)
	want = append(want, p.burst(t, 200, 500, 4)...)
	p.exchange(t2)
	_, got, _ = p.srvH.snapshot()
	require.Equal(t, want, got, "every message, in order, once")
	require.True(t, testKCP.Grown(cliK))
}

// kcpMemProbe records, on the shard goroutine that owns each session (in
// its OnNewDataComing), what internal/kcpx left in the session's lane-0 KCP:
// state the test goroutine may not read itself while the shards run.
type kcpMemProbe struct {
	mu         sync.Mutex
	shared     int // deliveries whose KCP used its shard's flush buffer
	notShared  int
	grown      int // deliveries of bulk messages with a grown KCP
	probes     int // deliveries of "probe"
	probeGrown int // ... with a grown KCP (should be trimmed by then)
}

func (pr *kcpMemProbe) record(t testing.TB, c *Conn, data []byte) {
	k := c.arq.View(0).KCP
	v := viewKCP(t, k)
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if fb := c.shard.kcp.FlushBuf(); len(fb) > 0 && v.Buf == &fb[0] {
		pr.shared++
	} else {
		pr.notShared++
	}
	switch {
	case string(data) == "probe":
		pr.probes++
		if testKCP.Grown(k) {
			pr.probeGrown++
		}
	case testKCP.Grown(k):
		pr.grown++
	}
}

// TestKCPMemSharedBufferLossy: two clients push several MB each, in large
// messages, through one server shard whose two sessions share one KCP
// flush buffer and echo everything back, over links with loss and
// reordering, so the shard's flushes of the two sessions (new data,
// retransmissions, ACKs) interleave. Every message must arrive intact, in
// order, once, both ways, and the KCPs grow their rings for it. Then, with
// heartbeats too rare to wake anyone, each session's own timer trims its
// KCP within arq.TrimDelay of going quiet: a probe message sent after that
// finds every KCP back at its baseline.
func TestKCPMemSharedBufferLossy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, size := 48, 48<<10 // 2.3 MB per client each way
		if raceEnabled {
			n = 12
		}
		var srvProbe, cliProbe kcpMemProbe
		quietHB := &Config{HeartbeatInterval: time.Hour, IdleTimeout: 2 * time.Hour}
		srvCfg := quietHB.Clone()
		srvCfg.Workers = 1
		p := newSimPair(t, 7, srvCfg, quietHB, false)
		p.srvH.newConn = func() *recordConn {
			r := newRecordConn()
			r.echo = true
			r.onData = func(c *Conn, data []byte) { srvProbe.record(t, c, data) }
			return r
		}
		p.net.SetDefault(netsim.Impairment{Loss: 0.05, Reorder: 0.05, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond})
		p.cliH.onData = func(c *Conn, data []byte) { cliProbe.record(t, c, data) }
		require.NoError(t, p.cli.Start(context.Background()))

		pc2, err := p.net.Listen("10.0.0.3:5000")
		require.NoError(t, err)
		cli2H := newRecordConn()
		cli2H.onData = p.cliH.onData
		cli2, err := NewClient(pc2, p.srvPC.LocalAddr(), cli2H, p.cliCfg)
		require.NoError(t, err)
		t.Cleanup(func() { cli2.Close() })
		require.NoError(t, cli2.Start(context.Background()))

		msg := func(client, i int) []byte {
			b := make([]byte, size-i*97) // sizes differ: segment boundaries move
			r := rand.New(rand.NewPCG(uint64(client), uint64(i)))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			binary.LittleEndian.PutUint32(b, uint32(client<<16|i))
			return b
		}
		clients := []struct {
			conn *Conn
			h    *recordConn
		}{{p.cli.Conn(), p.cliH}, {cli2.Conn(), cli2H}}
		done := make(chan struct{}, len(clients))
		for ci, c := range clients {
			go func() {
				const window = 6 // keeps the echo side's queue under SendQueueBytes
				for i := range n {
					for {
						_, got, _ := c.h.snapshot()
						if i-len(got) < window {
							break
						}
						time.Sleep(5 * time.Millisecond)
					}
					writeRetry(t, c.conn, msg(ci, i))
				}
				done <- struct{}{}
			}()
		}
		for range clients {
			<-done
		}
		waitEchoes := func(want int) {
			for {
				_, a, _ := p.cliH.snapshot()
				_, b, _ := cli2H.snapshot()
				if len(a) >= want && len(b) >= want {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitEchoes(n)

		p.srvH.mu.Lock()
		srvConns := append([]*Conn(nil), p.srvH.conns...)
		p.srvH.mu.Unlock()
		require.Len(t, srvConns, 2)
		for ci, c := range clients {
			_, echoed, _ := c.h.snapshot()
			require.Len(t, echoed, n, "client %d", ci)
			var srvH *recordConn
			for i, sc := range srvConns {
				if sc.RemoteAddr().String() == c.conn.LocalAddr().String() {
					srvH = p.srvH.handler(i)
				}
			}
			require.NotNil(t, srvH)
			_, got, _ := srvH.snapshot()
			require.Len(t, got, n, "client %d", ci)
			for i := range n {
				want := msg(ci, i)
				require.True(t, bytes.Equal(want, got[i]), "client %d message %d differs at the server", ci, i)
				require.True(t, bytes.Equal(want, echoed[i]), "client %d message %d differs in the echo", ci, i)
			}
			require.Positive(t, c.conn.Stats().Retransmissions, "5%% loss must cost retransmissions")
		}

		// Quiet for arq.TrimDelay: every session trims by its own timer,
		// which the probe (one small message each way) then sees.
		time.Sleep(arq.TrimDelay + 100*time.Millisecond)
		for _, c := range clients {
			_, err := c.conn.Write([]byte("probe"))
			require.NoError(t, err)
		}
		waitEchoes(n + 1)
		for _, pr := range []*kcpMemProbe{&srvProbe, &cliProbe} {
			pr.mu.Lock()
			require.Zero(t, pr.notShared, "a KCP without its shard's flush buffer")
			require.Equal(t, 2*(n+1), pr.shared)
			require.Positive(t, pr.grown, "large messages grow the rings")
			require.Equal(t, 2, pr.probes)
			require.Zero(t, pr.probeGrown, "a KCP not trimmed after arq.TrimDelay")
			pr.mu.Unlock()
		}
		t.Logf("server: %d of %d bulk deliveries on grown rings; net %+v", srvProbe.grown, 2*n, p.net.Stats())
	})
}

// TestKCPMemSteadyEcho: the 10k-session benchmark's traffic, one 100-byte
// message a second echoed back, fits the 2-entry rings: nothing grows, no
// trim is ever armed (no extra timer wake-ups), every echo arrives.
func TestKCPMemSteadyEcho(t *testing.T) {
	p := newMemPair(t, "") // the default controller
	p.srvH.echo = true
	now := time.Now()
	msg := make([]byte, 100)
	for i := range 30 {
		now = now.Add(time.Second)
		msg[0] = byte(i)
		_, err := p.cli.Write(msg)
		require.NoError(t, err)
		p.exchange(now)
		for _, c := range []*Conn{p.cli, p.srv} {
			l := c.arq.View(0)
			require.False(t, testKCP.Grown(l.KCP), "round %d", i)
			require.Equal(t, [3]int{kcpRingEntries, kcpRingEntries, kcpRingEntries}, viewKCP(t, l.KCP).Rings)
			require.False(t, l.TrimArmed, "round %d: a trim armed", i)
		}
		_, echoed, _ := p.cliH.snapshot()
		require.Len(t, echoed, i+1)
		require.Equal(t, msg, echoed[i])
	}
}
