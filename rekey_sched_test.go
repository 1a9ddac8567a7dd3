package uxp

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
		c := newRekeyTestConn(true)
		c.keys.since = t0
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

// TestOverloadKeepsSessionFromIdling checks that a datagram the read loop
// dropped because the worker was saturated counts as heard for the idle
// timer: the peer was sending, the server could not keep up.
func TestOverloadKeepsSessionFromIdling(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ep := &endpoint{epoch: t0.Add(-time.Hour)}
	c := &Conn{connFixed: connFixed{ep: ep}, connShard: connShard{hb: newHeartbeat(time.Second, 10*time.Second, false, t0)}}
	now := t0.Add(10 * time.Second)
	require.True(t, c.hb.idleExpired(now))
	require.False(t, c.overloadHeard(), "no overload drop: idle")

	c.overloadAt.Store(ep.mono(t0.Add(9 * time.Second)))
	require.True(t, c.overloadHeard())
	require.False(t, c.hb.idleExpired(now), "idle timer restarted from the drop")
	require.True(t, c.hb.idleExpired(t0.Add(19*time.Second)))
	require.False(t, c.overloadHeard(), "the same drop does not count twice")
}

// TestRekeyAnswerAdmit checks the responder's side: a worker that is
// behind, or out of budget, leaves a peer's new rekey init unanswered (the
// peer retransmits it), counted as deferred, but never for longer than
// rekeyAnswerMaxDefer from the first init it left; an answer resets that
// clock.
func TestRekeyAnswerAdmit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	newConn := func() *Conn { return newRekeyTestConn(false) }
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

// newRekeyTestConn is a session on a shard of its own, with a 30 s
// RekeyAfterTime, for the rekey scheduling tests.
func newRekeyTestConn(isClient bool) *Conn {
	ep := &endpoint{set: &settings{rekeyAfterTime: 30 * time.Second}}
	s := &shard{ep: ep, conns: map[*Conn]struct{}{}}
	c := &Conn{connFixed: connFixed{ep: ep, shard: s, id: 42, isClient: isClient}}
	s.conns[c] = struct{}{}
	return c
}
