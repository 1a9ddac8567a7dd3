package uxp

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestTimerWorkBoundedByUsefulWork counts the server's session timer runs
// (ServerStats.TimerEvents) against the old scheduling (testKCPTick: KCP's
// 10 ms tick while anything is unacknowledged), in the same test:
//
//   - unacked: the server has one message in flight and the client's
//     packets are black-holed for 3 s, so no ACK comes: the old tick runs
//     the session 100 times a second; the deadline-driven lane only at its
//     probes and its backed-off retransmission timeouts.
//   - loss 5%: an echo at 20 messages a second over a 20 ms path losing
//     5 % each way for 20 s: every message must still arrive, with fewer
//     timer runs.
func TestTimerWorkBoundedByUsefulWork(t *testing.T) {
	type result struct{ events, flushes uint64 }
	run := func(t *testing.T, scenario string, tick bool) result {
		var res result
		synctest.Test(t, func(t *testing.T) {
			cfg := &Config{testKCPTick: tick}
			p := newSimPair(t, 5, cfg, cfg, false)
			p.srvH.newConn = func() *recordConn { r := newRecordConn(); r.echo = true; return r }
			require.NoError(t, p.cli.Start(t.Context()))
			synctest.Wait()
			conn := p.cli.Conn()
			srvConn := func() *Conn { p.srvH.mu.Lock(); defer p.srvH.mu.Unlock(); return p.srvH.conns[0] }()
			switch scenario {
			case "unacked":
				time.Sleep(time.Second) // settle: handshake, confirmation
				synctest.Wait()
				p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Blackhole: true})
				before := p.srv.Stats()
				_, err := srvConn.Write([]byte("unacknowledged"))
				require.NoError(t, err)
				time.Sleep(3 * time.Second)
				synctest.Wait()
				after := p.srv.Stats()
				res = result{after.TimerEvents - before.TimerEvents, after.TimerFlushes - before.TimerFlushes}
			case "loss5":
				imp := netsim.Impairment{Loss: 0.05, Delay: 10 * time.Millisecond}
				p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), imp)
				p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), imp)
				before := p.srv.Stats()
				const n = 400
				for i := range n {
					_, err := conn.Write(testMessage(i, 100))
					require.NoError(t, err)
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(5 * time.Second)
				synctest.Wait()
				_, msgs, _ := p.cliH.snapshot()
				require.Len(t, msgs, n, "every echo arrived despite the loss")
				after := p.srv.Stats()
				res = result{after.TimerEvents - before.TimerEvents, after.TimerFlushes - before.TimerFlushes}
			}
		})
		return res
	}
	for _, tc := range []struct {
		scenario string
		maxRatio float64 // deadline-driven events ÷ ticked events
	}{
		{"unacked", 0.25},
		{"loss5", 0.8},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			var now, old result
			t.Run("deadline", func(t *testing.T) { now = run(t, tc.scenario, false) })
			t.Run("tick-baseline", func(t *testing.T) { old = run(t, tc.scenario, true) })
			t.Logf("%s: timer events %d (baseline tick: %d), RTO flushes %d", tc.scenario, now.events, old.events, now.flushes)
			require.Positive(t, old.events)
			require.LessOrEqual(t, float64(now.events), tc.maxRatio*float64(old.events),
				"timer work must follow the deadlines, not KCP's tick")
		})
	}
}

// TestRekeyJitterSpread checks the spread of rekey times: within ±20 % of
// RekeyAfterTime, evenly over that range, and the same on both ends of a
// session (both compute it from the session ID and epoch).
func TestRekeyJitterSpread(t *testing.T) {
	const (
		n     = 10000
		after = 30 * time.Second
		bins  = 10
	)
	rng := rand.New(rand.NewPCG(1, 2))
	var hist [bins]int
	lo, hi := time.Duration(float64(after)*(1-rekeyJitter)), time.Duration(float64(after)*(1+rekeyJitter))
	for range n {
		c := &Conn{connFixed: connFixed{id: rng.Uint32()}}
		c.keys.cur = rng.Uint32N(8)
		d := c.rekeyJittered(after)
		require.GreaterOrEqual(t, d, lo)
		require.Less(t, d, hi)
		hist[int(float64(d-lo)/float64(hi-lo)*bins)]++
		peer := &Conn{connFixed: connFixed{id: c.id}}
		peer.keys.cur = c.keys.cur
		require.Equal(t, d, peer.rekeyJittered(after))
	}
	for i, h := range hist {
		require.InDelta(t, n/bins, h, n/bins*0.2, "bin %d of the rekey times: %v", i, hist)
	}
}

// TestRekeyBudget checks the worker's token bucket of rekey starts.
func TestRekeyBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b rekeyBudget
	const rate = 50
	for i := range rate {
		require.True(t, b.take(t0, rate), "token %d", i)
	}
	require.False(t, b.take(t0, rate), "one second's worth spent")
	got := 0
	for b.take(t0.Add(100*time.Millisecond), rate) {
		got++
	}
	require.Equal(t, 5, got, "refills at rate per second")
	require.False(t, b.take(t0.Add(100*time.Millisecond), rate))
	// After a long pause the bucket holds one second's worth, no more.
	got = 0
	for b.take(t0.Add(time.Hour), rate) {
		got++
	}
	require.Equal(t, rate, got)
	require.Equal(t, float64(rekeyRateMin), rekeyRate(10, 2*time.Minute))
	require.InDelta(t, 2*5000/30.0, rekeyRate(5000, 30*time.Second), 1e-9)
}

// TestRekeyAdmit checks that a worker that is behind, or out of budget,
// postpones a due rekey (and says when to try again), and that a
// generation twice its rekey age goes ahead regardless.
func TestRekeyAdmit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	newConn := func() *Conn {
		ep := &endpoint{set: &settings{rekeyAfterTime: 30 * time.Second}}
		s := &shard{ep: ep, conns: map[*Conn]struct{}{}}
		c := &Conn{connFixed: connFixed{ep: ep, shard: s, id: 42, isClient: true}}
		c.keys.since = t0
		s.conns[c] = struct{}{}
		return c
	}
	for _, tc := range []struct {
		name   string
		behind bool
		spent  bool
		at     time.Duration // since the generation began
		want   bool
	}{
		{"due", false, false, 37 * time.Second, true},
		{"behind", true, false, 37 * time.Second, false},
		{"no budget", false, true, 37 * time.Second, false},
		{"behind but overdue", true, false, 73 * time.Second, true},
		{"no budget but overdue", false, true, 73 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn()
			now := t0.Add(tc.at)
			c.shard.behind.Store(tc.behind)
			if tc.spent {
				for c.shard.rekeys.take(now, rekeyRate(1, 30*time.Second)) {
				}
			}
			require.Equal(t, tc.want, c.rekeyAdmit(now))
			if tc.want {
				require.True(t, c.rekeyWait.IsZero())
				return
			}
			require.Equal(t, uint64(1), c.shard.traffic.rekeysDeferred.Load())
			wait := c.rekeyWait.Sub(now)
			require.GreaterOrEqual(t, wait, rekeyRetryBase)
			require.Less(t, wait, rekeyRetryBase+rekeyRetrySpread)
			// Until then it does not ask again (nor count again).
			require.False(t, c.rekeyAdmit(now.Add(wait/2)))
			require.Equal(t, uint64(1), c.shard.traffic.rekeysDeferred.Load())
			// The deadline the shard's timer sees is the retry, not the
			// past due time: no spinning.
			require.Equal(t, c.rekeyWait, c.rekeyDeadline())
		})
	}
}

// TestRekeyAnswerAdmit checks the responder's side: a worker that is
// behind, or out of budget, leaves a peer's new rekey init unanswered (the
// peer retransmits it), counted as deferred, but never for longer than
// rekeyAnswerMaxDefer from the first init it left; an answer resets that
// clock.
func TestRekeyAnswerAdmit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	newConn := func() *Conn {
		ep := &endpoint{set: &settings{rekeyAfterTime: 30 * time.Second}}
		s := &shard{ep: ep, conns: map[*Conn]struct{}{}}
		c := &Conn{connFixed: connFixed{ep: ep, shard: s, id: 42}}
		s.conns[c] = struct{}{}
		return c
	}
	for _, tc := range []struct {
		name   string
		behind bool
		spent  bool
		want   bool
	}{
		{"answered", false, false, true},
		{"behind", true, false, false},
		{"no budget", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn()
			c.shard.behind.Store(tc.behind)
			if tc.spent {
				for c.shard.rekeys.take(t0, rekeyRate(1, 30*time.Second)) {
				}
			}
			require.Equal(t, tc.want, c.rekeyAnswerAdmit(t0))
			if tc.want {
				require.Zero(t, c.shard.traffic.rekeysDeferred.Load())
				return
			}
			require.Equal(t, uint64(1), c.shard.traffic.rekeysDeferred.Load())
			// The peer's retransmissions (250 ms, doubling to 2 s) are
			// left too while the overload lasts, up to the bound.
			at := t0
			for _, gap := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second} {
				at = at.Add(gap)
				if at.Sub(t0) >= rekeyAnswerMaxDefer {
					break
				}
				if tc.spent {
					for c.shard.rekeys.take(at, rekeyRate(1, 30*time.Second)) {
					}
				}
				require.False(t, c.rekeyAnswerAdmit(at), "retransmission at %v", at.Sub(t0))
			}
			at = t0.Add(rekeyAnswerMaxDefer)
			if tc.spent {
				for c.shard.rekeys.take(at, rekeyRate(1, 30*time.Second)) {
				}
			}
			require.True(t, c.rekeyAnswerAdmit(at), "answered once postponed for rekeyAnswerMaxDefer")
			require.True(t, c.keys.deferredSince.IsZero(), "the next init starts a new clock")
			require.False(t, c.rekeyAnswerAdmit(at.Add(time.Millisecond)), "a new init is left again while behind")
		})
	}
}

// TestRekeyPerEvent: one event of a worker's loop (one now) starts or
// answers at most rekeyPerEvent rekeys, however full the budget: the rest
// wait for later events (the peers retransmit), so no batch of inbound
// datagrams holds the worker for a whole bucket of X25519 work.
func TestRekeyPerEvent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ep := &endpoint{set: &settings{rekeyAfterTime: 30 * time.Second}}
	s := &shard{ep: ep, conns: map[*Conn]struct{}{}}
	var conns []*Conn
	for i := range 1000 {
		c := &Conn{connFixed: connFixed{ep: ep, shard: s, id: uint32(i)}}
		s.conns[c] = struct{}{}
		conns = append(conns, c)
	}
	answered := 0
	for _, c := range conns[:50] {
		if c.rekeyAnswerAdmit(t0) {
			answered++
		}
	}
	require.Equal(t, rekeyPerEvent, answered, "one event")
	require.EqualValues(t, 50-rekeyPerEvent, s.traffic.rekeysDeferred.Load())
	require.True(t, conns[60].rekeyAnswerAdmit(t0.Add(time.Microsecond)), "the next event has its own")
}

// TestOverloadKeepsSessionFromIdling checks that a datagram the read loop
// dropped because the worker was saturated counts as heard for the idle
// timer: the peer was sending, the server could not keep up.
func TestOverloadKeepsSessionFromIdling(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := &Conn{connShard: connShard{hb: newHeartbeat(time.Second, 10*time.Second, false, t0)}}
	now := t0.Add(10 * time.Second)
	require.True(t, c.hb.idleExpired(now))
	require.False(t, c.overloadHeard(), "no overload drop: idle")

	c.overloadAt.Store(t0.Add(9 * time.Second).UnixNano())
	require.True(t, c.overloadHeard())
	require.False(t, c.hb.idleExpired(now), "idle timer restarted from the drop")
	require.True(t, c.hb.idleExpired(t0.Add(19*time.Second)))
	require.False(t, c.overloadHeard(), "the same drop does not count twice")
}

// TestTimerCoalescing checks the timer heap's keys: deadlines round up to
// timerCoalesce, never down, so sessions due in one slot share one wake
// and none runs early.
func TestTimerCoalescing(t *testing.T) {
	ep := &endpoint{epoch: time.Unix(1000, 0)}
	s := &shard{ep: ep}
	for _, off := range []time.Duration{0, 1, time.Microsecond, 999 * time.Microsecond, time.Millisecond, time.Millisecond + 1} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			k := s.key(ep.epoch.Add(off))
			require.GreaterOrEqual(t, k, int64(off))
			require.Less(t, k-int64(off), int64(timerCoalesce))
			require.Zero(t, k%int64(timerCoalesce))
		})
	}
}

// TestTimerSlicesInterleave: 600 sessions of one worker all come due in
// the same millisecond (each has a message in flight whose ACKs are
// black-holed). The worker runs them in slices of timerSlice, taking
// inbound work between slices, and every one of them still retransmits,
// and every message arrives once the path is back.
func TestTimerSlicesInterleave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sessions = 600
		n := newDialerNet(t, 7, 1, netsim.Impairment{Delay: 2 * time.Millisecond}, &Config{Workers: 1})
		conns := make([]*Conn, sessions)
		handlers := make([]*recordConn, sessions)
		for i := range sessions {
			handlers[i] = newRecordConn()
			c, err := n.d.Dial(t.Context(), n.addrs[0], handlers[i])
			require.NoError(t, err)
			conns[i] = c
		}
		time.Sleep(time.Second)
		synctest.Wait()
		s := n.d.ep.shards[0]
		cuts, flushes := s.traffic.timerCuts.Load(), s.traffic.timerFlushes.Load()
		// The server's answers (ACKs, echoes) are lost from now on.
		n.net.SetLink(n.addrs[0], conns[0].LocalAddr(), netsim.Impairment{Blackhole: true})
		for i, c := range conns {
			_, err := c.Write(testMessage(i, 100))
			require.NoError(t, err)
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		require.Greater(t, s.traffic.timerCuts.Load(), cuts, "600 due timers take more than one slice")
		require.GreaterOrEqual(t, s.traffic.timerFlushes.Load()-flushes, uint64(sessions), "every session retransmitted")
		// Memory accounting: the unacknowledged message holds a whole
		// segment buffer.
		require.GreaterOrEqual(t, conns[0].Stats().HeldBytes, kcpSegBuf+100)
		n.net.SetLink(n.addrs[0], conns[0].LocalAddr(), netsim.Impairment{Delay: 2 * time.Millisecond})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		for i, h := range handlers {
			_, got, closed := h.snapshot()
			require.Empty(t, closed)
			require.Len(t, got, 1, "session %d: its echo arrived", i)
			require.Zero(t, conns[i].Stats().HeldBytes, "session %d holds nothing once acknowledged", i)
		}
		require.Zero(t, n.servers[0].Stats().HeldBytes)
	})
}

// TestIdleSessionTimerEvents: an established session with nothing to send
// runs its timer only for real deadlines (its path MTU confirmation, every
// 30-45 s, and its idle and rekey timers), not once a second to look at a
// retransmission count that cannot have moved (pmtud.go: the check is
// lazy). 10,000 such sessions cost 10,000 timer events a second before.
func TestIdleSessionTimerEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{}
		p := newSimPair(t, 9, cfg, cfg, false)
		require.NoError(t, p.cli.Start(t.Context()))
		time.Sleep(5 * time.Second) // handshake, path MTU search
		synctest.Wait()
		srvConn := func() *Conn { p.srvH.mu.Lock(); defer p.srvH.mu.Unlock(); return p.srvH.conns[0] }()
		require.Greater(t, srvConn.PathMTU(), pmtuBase, "the search ran: the session has a size to confirm")
		before := p.srv.Stats().TimerEvents
		const idle = 60 * time.Second
		time.Sleep(idle)
		synctest.Wait()
		events := p.srv.Stats().TimerEvents - before
		t.Logf("server timer events over %v idle: %d", idle, events)
		require.LessOrEqual(t, events, uint64(idle/pmtuConfirmEvery)+4, "no wake per second while idle")
	})
}
