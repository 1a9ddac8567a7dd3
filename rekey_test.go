package uxp

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/replay"
)

// retiredKeys records every key generation a side zeroed (the onRetire hook).
type retiredKeys struct {
	mu     sync.Mutex
	epochs []uint32
	dirty  int // generations handed to the hook with key material left
}

func (r *retiredKeys) hook(k *keySlot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epochs = append(r.epochs, k.epoch)
	if !isZero(k.sendKey[:]) || !isZero(k.recvKey[:]) || k.send != nil || k.recv != nil {
		r.dirty++
	}
}

func (r *retiredKeys) snapshot() ([]uint32, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint32(nil), r.epochs...), r.dirty
}

// TestRekeyUnderTraffic runs a long session over a lossy, reordering,
// duplicating link while keys rotate many times, triggered by a (fake)
// clock or by a low packet count, for both ciphers. The client writes a
// message every 20 ms and the server echoes it: every message must arrive
// exactly once, in order, intact, with no delivery gap above a bound, and
// every retired key generation must have been zeroed.
func TestRekeyUnderTraffic(t *testing.T) {
	type trigger struct {
		name string
		cfg  Config
	}
	triggers := []trigger{
		{"time", Config{RekeyAfterTime: 2 * time.Second, RekeyAfterPackets: -1}},
		// Both sides send about as much, so both trigger: collisions are
		// exercised too.
		{"count", Config{RekeyAfterTime: -1, RekeyAfterPackets: 150}},
	}
	for _, cipher := range []Cipher{ChaCha20Poly1305, Salsa20Poly1305} {
		for _, tr := range triggers {
			t.Run(cipher.String()+"/"+tr.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testRekeyUnderTraffic(t, cipher, tr.cfg) })
			})
		}
	}
}

func testRekeyUnderTraffic(t *testing.T, cipher Cipher, base Config) {
	const (
		n        = 1000
		interval = 20 * time.Millisecond
		// maxStall bounds the gap between two consecutive deliveries at the
		// server while the client writes every 20 ms. A rekey that lost or
		// stalled messages would show up here or as a missing message.
		maxStall = time.Second
	)
	var srvRetired, cliRetired retiredKeys
	srvCfg, cliCfg := base, base
	hooksOf(&srvCfg).onRetire = srvRetired.hook
	cliCfg.Cipher = cipher
	hooksOf(&cliCfg).onRetire = cliRetired.hook
	p := newSimPair(t, 11, &srvCfg, &cliCfg, false)

	var (
		mu      sync.Mutex
		last    time.Time
		stall   time.Duration
		arrived int
	)
	p.srvH.newConn = func() *recordConn {
		r := newRecordConn()
		r.echo = true
		r.onData = func(*Conn, []byte) {
			mu.Lock()
			now := time.Now()
			if arrived > 0 {
				stall = max(stall, now.Sub(last))
			}
			last = now
			arrived++
			mu.Unlock()
		}
		return r
	}
	p.net.SetDefault(netsim.Impairment{Loss: 0.1, Duplicate: 0.03, Reorder: 0.1, Delay: 15 * time.Millisecond, Jitter: 5 * time.Millisecond})
	require.NoError(t, p.cli.Start(context.Background()))
	conn := p.cli.Conn()

	sizes := messageSizes(n)
	for i := range n {
		writeRetry(t, conn, testMessage(i, min(sizes[i], 3000)))
		time.Sleep(interval)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, msgs, _ := p.cliH.snapshot(); len(msgs) >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // duplicates would show up by now

	_, echoed, _ := p.cliH.snapshot()
	_, got, _ := p.srvH.handler(0).snapshot()
	require.Len(t, got, n, "server messages")
	require.Len(t, echoed, n, "echoed messages")
	for i := range n {
		want := testMessage(i, min(sizes[i], 3000))
		require.True(t, bytes.Equal(want, got[i]), "server message %d differs", i)
		require.True(t, bytes.Equal(want, echoed[i]), "echoed message %d differs", i)
	}
	mu.Lock()
	require.LessOrEqual(t, stall, maxStall, "delivery stalled")
	mu.Unlock()

	// A rekey may be in flight at this instant: the responder counts it
	// only when it first hears the initiator under the new keys, which on
	// an idle session can be the next heartbeat (3 s). Wait (virtual time)
	// for a moment when both agree.
	cst, sst := conn.Stats(), p.srv.Stats()
	for wait := time.Now().Add(10 * time.Second); cst.Rekeys != sst.Rekeys && time.Now().Before(wait); {
		time.Sleep(5 * time.Millisecond)
		cst, sst = conn.Stats(), p.srv.Stats()
	}
	require.GreaterOrEqual(t, cst.Rekeys, uint64(5), "the run must cross several rekeys")
	// Both sides move through the same generations; one may be a single
	// switch ahead while the latest exchange is in flight (the initiator
	// counts at the ack, the responder at the first packet under the new
	// key).
	require.InDelta(t, float64(cst.Rekeys), float64(sst.Rekeys), 1, "both sides moved through the same generations")
	require.Zero(t, cst.Drops.AuthFailed+sst.Drops.AuthFailed, "no packet may fail to open: the key phase picks the right key")

	// Every generation before the current one has been retired and zeroed,
	// on both sides, once its grace period is over.
	time.Sleep(2 * rekeyGrace)
	// (Time-based rekeys go on meanwhile, so each side is compared with its
	// own count, allowing for one exchange in flight.)
	sides := map[string]struct {
		r     *retiredKeys
		rekey func() uint64
	}{
		"server": {&srvRetired, func() uint64 { return p.srv.Stats().Rekeys }},
		"client": {&cliRetired, func() uint64 { return conn.Stats().Rekeys }},
	}
	for side, s := range sides {
		epochs, dirty := s.r.snapshot()
		require.Zero(t, dirty, "%s: a retired generation kept key material", side)
		require.GreaterOrEqual(t, len(epochs), int(s.rekey())-1, "%s: retired generations %v", side, epochs)
	}
	mu.Lock()
	t.Logf("%v rekeys, max delivery gap %v, retrans %d, net %+v", cst.Rekeys, stall, cst.Retransmissions, p.net.Stats())
	mu.Unlock()
}

// TestCounterExhaustion starts the client's counter just below the limit:
// the session must send no packet at or beyond it (the peer would reject
// it anyway), and end with ErrCounterExhausted, not ErrConnClosed.
func TestCounterExhaustion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cliCfg := &Config{hooks: &testHooks{startCounter: rejectAfterForTest() - 50}}
		p := newSimPair(t, 3, nil, cliCfg, true)
		conn := p.cli.Conn()
		for i := range 200 {
			if _, err := conn.Write(testMessage(i, 100)); err != nil {
				require.ErrorIs(t, err, ErrCounterExhausted)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case <-conn.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		require.ErrorIs(t, conn.Err(), ErrCounterExhausted)
		_, _, closed := p.cliH.snapshot()
		require.Len(t, closed, 1)
		require.ErrorIs(t, closed[0], ErrCounterExhausted)
		_, err := conn.Write([]byte("x"))
		require.ErrorIs(t, err, ErrCounterExhausted)
		// No packet went out with a counter at or past the limit: the
		// server rejected none as a replay of the window's end.
		require.Zero(t, p.srv.Stats().Drops.Replay)
		require.LessOrEqual(t, conn.Stats().PacketsSent, uint64(50))
	})
}

func rejectAfterForTest() uint64 { return replay.RejectAfter }

// TestRekeyIdleSession lets a session sit idle (heartbeats only) across many
// time-triggered rekeys, with the server as the usual responder, then
// checks that messages still flow both ways and no packet failed to open.
func TestRekeyIdleSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{RekeyAfterTime: time.Second}
		p := newSimPair(t, 12, cfg, cfg, false)
		echoSessions(p)
		require.NoError(t, p.cli.Start(context.Background()))
		time.Sleep(30 * time.Second)
		conn := p.cli.Conn()
		writeRetry(t, conn, []byte("after a long idle"))
		waitEcho(t, p.cliH, 1, 5*time.Second)
		cst, sst := conn.Stats(), p.srv.Stats()
		require.GreaterOrEqual(t, cst.Rekeys, uint64(5))
		require.InDelta(t, float64(cst.Rekeys), float64(sst.Rekeys), 1)
		require.Zero(t, cst.Drops.AuthFailed+sst.Drops.AuthFailed)
		require.Nil(t, conn.Err())
	})
}

// TestRekeyConfig checks the new Config fields' validation.
func TestRekeyConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"time too short", Config{RekeyAfterTime: 500 * time.Millisecond}, "RekeyAfterTime"},
		{"count too low", Config{RekeyAfterPackets: 10}, "RekeyAfterPackets"},
		{"both disabled", Config{RekeyAfterTime: -1, RekeyAfterPackets: -1}, ""},
		{"defaults", Config{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireConfigField(t, tc.cfg.Validate(), tc.field)
		})
	}
	set, err := (&Config{}).resolve()
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, set.rekeyAfterTime)
	require.Equal(t, int64(1<<32), set.rekeyAfterPackets)
}

// TestPeerRekeyFlood: a client that starts a new rekey as soon as the last
// one finished (as a hostile peer would) can make the server answer at most
// one rekey per minPeerRekeyGap; each answer costs the server 2 X25519 (a
// key generation and the exchange). Inits beyond the bound are dropped and
// counted (Drops.RateLimited), and the session's traffic is undisturbed. On
// main the server answered one rekey per round trip.
func TestPeerRekeyFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			oneWay   = 5 * time.Millisecond
			duration = 10 * time.Second
			gap      = 10 * time.Millisecond
		)
		p := newSimPair(t, 51, nil, &Config{hooks: &testHooks{eagerRekey: true}}, false)
		p.net.SetDefault(netsim.Impairment{Delay: oneWay})
		require.NoError(t, p.cli.Start(context.Background()))
		time.Sleep(50 * time.Millisecond)
		p.srvH.mu.Lock()
		srv := p.srvH.conns[0]
		p.srvH.mu.Unlock()
		x0, st0 := p.srv.ep.x25519.Load(), srv.Stats()
		sent := 0
		for end := time.Now().Add(duration); time.Now().Before(end); sent++ {
			_, err := p.cli.Conn().Write([]byte("tick"))
			require.NoError(t, err)
			time.Sleep(gap)
		}
		time.Sleep(200 * time.Millisecond)
		st := srv.Stats()
		x := p.srv.ep.x25519.Load() - x0
		rekeys := st.Rekeys - st0.Rekeys
		packets := st.PacketsReceived - st0.PacketsReceived
		const maxRekeys = uint64(duration/time.Second) + 1 // minPeerRekeyGap is 1 s
		require.Equal(t, time.Second, minPeerRekeyGap)
		t.Logf("%v: server answered %d rekeys (bound %d), refused %d inits, %d X25519 for %d datagrams (%.4f per datagram; default schedule: one rekey per %v)",
			duration, rekeys, maxRekeys, st.Drops.RateLimited, x, packets, float64(x)/float64(packets), defaultRekeyAfterTime)
		require.LessOrEqual(t, rekeys, maxRekeys, "at most one peer rekey per %v", minPeerRekeyGap)
		require.GreaterOrEqual(t, rekeys, maxRekeys/2, "an eager but honest-paced peer still rekeys")
		require.LessOrEqual(t, x, 2*maxRekeys, "2 X25519 per answered rekey, none for refused ones")
		require.Positive(t, st.Drops.RateLimited, "inits beyond the bound were dropped and counted")
		require.Equal(t, uint64(sent), st.MessagesReceived, "traffic went on")
		require.NoError(t, srv.Err())
	})
}
