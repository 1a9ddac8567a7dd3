package uxp

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestHeartbeatSkipsPingWhenBusy: a confirmed session that sent and heard
// a packet within the last interval skips its ping, at most
// maxSkippedPings times in a row; an idle one, or one that hears nothing,
// pings on time; an unconfirmed client always pings.
func TestHeartbeatSkipsPingWhenBusy(t *testing.T) {
	const iv = 3 * time.Second
	t0 := time.Unix(1000, 0)
	h := newHeartbeat(iv, 10*time.Second, true, t0)
	require.True(t, h.pingDue(t0), "the first ping confirms the keys")
	h.sent(t0)
	// Unconfirmed: traffic does not replace the confirming ping.
	h.received(t0.Add(100 * time.Millisecond))
	require.True(t, h.pingDue(t0.Add(confirmInterval)))
	h.pong(t0.Add(confirmInterval), t0.Add(confirmInterval+time.Millisecond))

	// Busy: both directions carry traffic every second.
	now := t0.Add(confirmInterval)
	pings := 0
	for range 60 {
		now = now.Add(time.Second)
		h.sent(now)
		h.received(now)
		if h.pingDue(now) {
			pings++
		}
	}
	require.Equal(t, 5, pings, "one ping in every %d intervals over a busy minute", maxSkippedPings+1)

	// Only sending, nothing heard: ping every interval.
	pings = 0
	for range 9 {
		now = now.Add(time.Second)
		h.sent(now)
		if h.pingDue(now) {
			pings++
		}
	}
	require.Equal(t, 3, pings)

	// Idle: ping every interval.
	pings = 0
	for range 9 {
		now = now.Add(time.Second)
		if h.pingDue(now) {
			pings++
		}
	}
	require.Equal(t, 3, pings)
}

// TestRTTPoisoning: an authenticated client forges the RTT fields of its
// pings (the echoed server time and the hold time) and its own clock. The
// server must never report an RTT or RTTVar outside [0, the longest a
// genuine sample can be]: the time since the pong the ping answers, at most
// a heartbeat interval plus a round trip here. Forged values outside what
// the session sent are dropped and counted. On main two such pings made
// the server report RTT = -1ns and an overflowed RTTVar.
func TestRTTPoisoning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 10 * time.Millisecond
		max := uint64(1<<64 - 1)
		attacks := []struct {
			name      string
			forge     func(b []byte)
			malformed bool
		}{
			{"held = MinInt64", func(b []byte) { binary.LittleEndian.PutUint64(b[16:], 1<<63) }, true},
			{"held = -1ns", func(b []byte) { binary.LittleEndian.PutUint64(b[16:], max) }, true},
			// An honest client's hold time can exceed the pong's age by
			// the length of an event (TestPingHoldLongerThanPongAge):
			// answered, and no sample taken.
			{"held beyond the pong's age", func(b []byte) { binary.LittleEndian.PutUint64(b[16:], uint64(time.Hour)) }, false},
			{"echo of a server time never sent", func(b []byte) { binary.LittleEndian.PutUint64(b[8:], 1) }, true},
			{"echo from the future", func(b []byte) {
				binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])+uint64(time.Hour))
			}, true},
			{"client clock 2^64-1", func(b []byte) { binary.LittleEndian.PutUint64(b[0:], max) }, true},
			{"held = 0 (largest sample in range)", func(b []byte) { binary.LittleEndian.PutUint64(b[16:], 0) }, false},
		}
		var next atomic.Int32 // attacks done; the hook runs on the client's shard
		honest := true
		cliCfg := &Config{hooks: &testHooks{rewriteFrame: func(kind byte, b []byte) {
			if kind != framePing || binary.LittleEndian.Uint64(b[8:]) == 0 {
				return
			}
			// Every other ping is honest, so the session stays alive.
			n := int(next.Load())
			if honest = !honest; honest || n >= len(attacks) {
				return
			}
			attacks[n].forge(b)
			next.Add(1)
		}}}
		p := newSimPair(t, 41, nil, cliCfg, false)
		p.net.SetDefault(netsim.Impairment{Delay: oneWay})
		require.NoError(t, p.cli.Start(t.Context()))
		time.Sleep(50 * time.Millisecond)
		p.srvH.mu.Lock()
		srv := p.srvH.conns[0]
		p.srvH.mu.Unlock()
		bound := defaultHeartbeatInterval + 4*oneWay // a genuine sample's ceiling
		malformed := 0
		for i, a := range attacks {
			before := p.srv.Stats().Drops.Malformed
			for k := 0; int(next.Load()) == i; k++ {
				require.Less(t, k, 200, "%s: the forged ping was never sent", a.name)
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(2 * oneWay)
			st := srv.Stats()
			t.Logf("%s: server RTT %v, RTTVar %v", a.name, st.RTT, st.RTTVar)
			require.GreaterOrEqual(t, st.RTT, time.Duration(0), a.name)
			require.LessOrEqual(t, st.RTT, bound, a.name)
			require.GreaterOrEqual(t, st.RTTVar, time.Duration(0), a.name)
			require.LessOrEqual(t, st.RTTVar, bound, a.name)
			if a.malformed {
				malformed++
				require.Equal(t, before+1, p.srv.Stats().Drops.Malformed, "%s: dropped and counted", a.name)
			}
		}
		require.NoError(t, srv.Err(), "the session survived")
		require.Equal(t, 5, malformed)
	})
}

func TestHeartbeat(t *testing.T) {
	t0 := time.Unix(100, 0)
	h := newHeartbeat(3*time.Second, 10*time.Second, true, t0)
	require.True(t, h.pingDue(t0), "the first ping goes at once")
	require.False(t, h.pingDue(t0.Add(100*time.Millisecond)))
	require.True(t, h.pingDue(t0.Add(confirmInterval)), "unconfirmed: re-ping quickly")
	h.pong(t0.Add(confirmInterval), t0.Add(confirmInterval+20*time.Millisecond))
	require.Equal(t, 20*time.Millisecond, h.srtt)
	require.False(t, h.pingDue(t0.Add(time.Second)))
	require.True(t, h.pingDue(t0.Add(confirmInterval+3*time.Second)))
	require.False(t, h.idleExpired(t0.Add(9*time.Second)))
	require.True(t, h.idleExpired(t0.Add(10*time.Second)))
	h.received(t0.Add(9 * time.Second))
	require.False(t, h.idleExpired(t0.Add(10*time.Second)))
	idle := newHeartbeat(0, 10*time.Second, false, t0.Add(9*time.Second))
	require.Equal(t, t0.Add(19*time.Second), idle.deadline())

	srv := newHeartbeat(3*time.Second, -1, false, t0)
	require.False(t, srv.pingDue(t0.Add(time.Hour)), "servers never ping")
	require.False(t, srv.idleExpired(t0.Add(time.Hour)), "negative idle timeout never expires")
	require.True(t, srv.deadline().IsZero())
}

// TestPingHoldLongerThanPongAge is the issue 18 idle soak's bug: each side
// reads its clock once per event, so an honest client can report holding
// a pong a little longer than the server counts since it sent that pong
// (the client stamped the pong when a long event began, before it was
// even sent). The server dropped such pings as malformed and unanswered;
// every later ping echoes the same pong with the same error, so an idle
// client heard nothing more and ended by its idle timeout. Here every
// ping claims 1 ms more hold time than it had: the idle session must stay
// up across rekeys, its pings answered and no sample taken from them.
func TestPingHoldLongerThanPongAge(t *testing.T) {
	const oneWay = 100 * time.Microsecond
	// Just past the round trip (what the soak saw on loopback), a
	// loaded worker's event, a stall.
	for _, skew := range []time.Duration{2*oneWay + time.Microsecond, 4 * time.Millisecond, 50 * time.Millisecond} {
		t.Run(skew.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var skewed atomic.Int64
				cliCfg := &Config{RekeyAfterTime: 10 * time.Second, hooks: &testHooks{rewriteFrame: func(kind byte, b []byte) {
					if kind != framePing || binary.LittleEndian.Uint64(b[8:]) == 0 {
						return
					}
					held := binary.LittleEndian.Uint64(b[16:])
					binary.LittleEndian.PutUint64(b[16:], held+uint64(skew))
					skewed.Add(1)
				}}}
				srvCfg := &Config{RekeyAfterTime: 10 * time.Second}
				p := newSimPair(t, 43, srvCfg, cliCfg, false)
				p.net.SetDefault(netsim.Impairment{Delay: oneWay})
				require.NoError(t, p.cli.Start(t.Context()))
				time.Sleep(time.Minute) // idle: heartbeats and rekeys only
				conn := p.cli.Conn()
				require.NoError(t, conn.Err(), "the idle client heard its pongs")
				require.GreaterOrEqual(t, skewed.Load(), int64(8), "pings sent with the skew")
				p.srvH.mu.Lock()
				srv := p.srvH.conns[0]
				p.srvH.mu.Unlock()
				require.NoError(t, srv.Err())
				st := p.srv.Stats()
				require.Zero(t, st.Drops.Malformed, "an honest ping is not malformed")
				require.GreaterOrEqual(t, conn.Stats().Rekeys, uint64(4))
				// No sample from the skewed pings: the server's RTT is
				// still its handshake sample, a genuine round trip.
				sst := srv.Stats()
				require.Greater(t, sst.RTT, time.Duration(0))
				require.LessOrEqual(t, sst.RTT, 4*oneWay)
			})
		})
	}
}
