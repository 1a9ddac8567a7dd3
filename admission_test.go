package uxp

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestPSKRejectedBeforeDH: with a pre-shared key configured, an initiation
// from a client without it (psk flag clear) or with another one (flag set,
// mac1 keyed with its own psk) costs the server no X25519 and no half-open
// entry, and is answered with silence, exactly as an initiation for another
// server is: whether the server has a psk is not visible. The bound is in
// X25519 ladders per initiation against those of an ordinary handshake in
// the same run. On main a wrong psk costs a full handshake (3 ladders, a
// half-open session and a 92-byte response).
func TestPSKRejectedBeforeDH(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		psk, wrong := testKeys(t).Private, testKeys(t).Private
		p := newSimPair(t, 31, &Config{Identity: IdentityConfig{PresharedKey: psk}}, &Config{Identity: IdentityConfig{PresharedKey: psk}}, false)
		x0 := p.srv.ep.x25519.Load()
		require.NoError(t, p.cli.Start(t.Context()))
		time.Sleep(50 * time.Millisecond)
		perHandshake := p.srv.ep.x25519.Load() - x0
		require.Equal(t, uint64(3), perHandshake, "an ordinary NK handshake: es, the ephemeral, ee")

		attacker, err := p.net.Listen("10.0.0.66:7000")
		require.NoError(t, err)
		const n = 100
		for _, id := range []clientIdentity{{}, {psk: wrong[:]}, {static: testStatic(t), psk: wrong[:]}} {
			before := p.srv.Stats()
			x := p.srv.ep.x25519.Load()
			for range n {
				init := testInitiation(t, p.keys.Public, id).initiation()
				p.net.Inject(attacker.LocalAddr(), p.srvPC.LocalAddr(), init)
			}
			time.Sleep(100 * time.Millisecond)
			st := p.srv.Stats()
			spent := p.srv.ep.x25519.Load() - x
			t.Logf("flags %#x: %d initiations cost %d X25519 (ordinary handshake: %d, ratio %.2f)", id.flags(), n, spent, perHandshake, float64(spent)/float64(n*perHandshake))
			require.Zero(t, spent, "no Diffie-Hellman without the psk")
			require.Equal(t, before.Handshake.Processed, st.Handshake.Processed)
			require.Equal(t, 0, st.HalfOpen, "no state")
			require.Equal(t, before.Drops.AuthFailed+n, st.Drops.AuthFailed, "dropped at mac1 and counted")
			got, _ := drainBytes(t, attacker)
			require.Zero(t, got, "silence, as for an initiation meant for another server")
		}

		// A server without a psk treats an initiation with one the same
		// way: mac1 fails, nothing is answered.
		q := newSimPair(t, 32, nil, nil, false)
		qa, err := q.net.Listen("10.0.0.66:7000")
		require.NoError(t, err)
		before := q.srv.Stats()
		q.net.Inject(qa.LocalAddr(), q.srvPC.LocalAddr(), testInitiation(t, q.keys.Public, clientIdentity{psk: wrong[:]}).initiation())
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, before.Drops.AuthFailed+1, q.srv.Stats().Drops.AuthFailed)
		got, _ := drainBytes(t, qa)
		require.Zero(t, got)
	})
}

// TestMaxSessionsPerSource: one source (an IPv4 address; an IPv6 /64) holds
// at most Admission.MaxSessionsPerSource sessions, established and
// half-open together. Beyond it an initiation costs no X25519 and creates
// no state, and other sources are unaffected. Initiations forged in a
// victim's name fill only the unproven share: the victim itself still gets
// in after a cookie round trip. On main one address could take every slot.
func TestMaxSessionsPerSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 8
		cfg := &Config{Admission: AdmissionConfig{MaxSessionsPerSource: limit}}
		p := newSimPair(t, 33, cfg, nil, false)
		short := &Config{HandshakeTimeout: time.Second}
		for i := range limit {
			_, _, err := p.addClient(t, "10.0.0.9:"+itoa(6000+i), nil)
			require.NoError(t, err, "client %d", i)
			time.Sleep(10 * time.Millisecond)
		}
		st := p.srv.Stats()
		require.Equal(t, limit, st.Sessions)

		x := p.srv.ep.x25519.Load()
		_, _, err := p.addClient(t, "10.0.0.9:7000", short)
		require.ErrorIs(t, err, ErrHandshakeFailed, "the source is full")
		st = p.srv.Stats()
		spent := p.srv.ep.x25519.Load() - x
		t.Logf("a full source's initiations: %d dropped, %d X25519 spent", st.Handshake.SourceLimited, spent)
		require.Positive(t, st.Handshake.SourceLimited)
		require.Zero(t, spent, "no Diffie-Hellman beyond the limit")
		require.Equal(t, limit, st.Sessions)
		require.Zero(t, st.HalfOpen)
		_, _, err = p.addClient(t, "10.0.0.10:6000", nil)
		require.NoError(t, err, "another source is unaffected")

		// IPv6: the /64 is one source.
		q := newSimPair(t, 34, &Config{Admission: AdmissionConfig{MaxSessionsPerSource: 2}}, nil, false)
		for i, addr := range []string{"[2001:db8::1]:6000", "[2001:db8::2]:6000"} {
			_, _, err := q.addClient(t, addr, nil)
			require.NoError(t, err, "client %d", i)
		}
		// Confirmed: until the server has the clients' first packets, their
		// sessions count as unproven, and a source with a cookie may hold
		// up to twice the limit.
		time.Sleep(10 * time.Millisecond)
		_, _, err = q.addClient(t, "[2001:db8::ffff]:6000", short)
		require.ErrorIs(t, err, ErrHandshakeFailed, "same /64")
		_, _, err = q.addClient(t, "[2001:db8:0:1::1]:6000", nil)
		require.NoError(t, err, "another /64")

		// Forged initiations in a victim's name (never confirmed) fill the
		// victim's quota with unproven half-open sessions, and no more...
		victim := netip.MustParseAddrPort("10.0.0.11:6000")
		forger := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 11), Port: 9}
		for range 3 * limit {
			p.net.Inject(forger, p.srvPC.LocalAddr(), testInitiation(t, p.keys.Public, clientIdentity{}).initiation())
		}
		time.Sleep(50 * time.Millisecond)
		st = p.srv.Stats()
		require.Equal(t, limit, st.HalfOpen, "half-open sessions per source are bounded too")
		require.GreaterOrEqual(t, st.Handshake.CookiesSent, uint64(2*limit), "beyond it, only cookie replies")
		// ...but the victim, which receives at its address, still gets in.
		_, _, err = p.addClient(t, victim.String(), nil)
		require.NoError(t, err, "forged half-open sessions do not lock the victim out")

		// The default.
		set, err := (&Config{}).resolve()
		require.NoError(t, err)
		require.Equal(t, 4096, set.admission.perSource)
		set, err = (&Config{Admission: AdmissionConfig{MaxSessionsPerSource: -1}}).resolve()
		require.NoError(t, err)
		require.LessOrEqual(t, set.admission.perSource, 0, "negative: no limit")
	})
}

// TestCGNATBurst: 1,024 clients behind one address (a carrier-grade NAT)
// dial at once. The burst trips cookie mode; every client must still
// connect within the default HandshakeTimeout, both when the queue
// triggers load on its own and when the server is held under load
// throughout. On main (per-source budget 100/s, burst 100) dials took up
// to 6 s and a fifth failed. The existing flood tests (dos_test.go,
// flood_test.go) bound the spoofed-flood side with
// the same defaults.
func TestCGNATBurst(t *testing.T) {
	n := 1024
	if raceEnabled {
		// The race detector's own runtime (ThreadSanitizer) sometimes
		// aborts with "CHECK failed: ... kEpochLast" while 700 clients'
		// goroutines start at once (2 of 7 -race runs of the package on
		// one machine, under load); it is not a report about our code.
		// Under -race this test checks the handshake path for races with
		// fewer clients; .ci/run runs it without -race too, with all
		// 1,024, beyond the old per-source burst plus 5 s of its rate.
		n = 256
	}
	for _, forced := range []bool{false, true} {
		t.Run(map[bool]string{false: "natural", true: "forced load"}[forced], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newSimPair(t, 35, nil, nil, false)
				p.net.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
				p.srv.forceLoad.Store(forced)
				type result struct {
					took time.Duration
					err  error
				}
				results := make(chan result, n)
				clients := make([]*Client, n)
				for i := range n {
					pc, err := p.net.Listen("100.64.0.1:" + itoa(10000+i))
					require.NoError(t, err)
					c, err := NewClient(pc, p.srvPC.LocalAddr(), nil, &Config{ServerPublicKey: p.keys.Public})
					require.NoError(t, err)
					clients[i] = c
				}
				start := time.Now()
				for _, c := range clients {
					go func() {
						err := c.Start(t.Context())
						results <- result{time.Since(start), err}
					}()
				}
				var worst time.Duration
				failed := 0
				for range n {
					r := <-results
					worst = max(worst, r.took)
					if r.err != nil {
						failed++
					}
				}
				st := p.srv.Stats()
				t.Logf("%d clients from one address: %d failed, slowest %v; cookies %d, rate limited %d, DH stage %d",
					n, failed, worst, st.Handshake.CookiesSent, st.Handshake.RateLimited, st.Handshake.Processed)
				require.Zero(t, failed)
				require.Less(t, worst, defaultHandshakeTimeout)
				if forced {
					require.Positive(t, st.Handshake.CookiesSent, "it went through cookie mode")
				}
				for _, c := range clients {
					c.Close()
				}
			})
		})
	}
}

// TestSourceTable: the per-source count's rule. Unproven sessions (created
// without a cookie) fill a source for unproven initiations only; a proven
// source is held back by its proven sessions, and by twice the limit in
// all; the table forgets a source with no session.
func TestSourceTable(t *testing.T) {
	const limit = 4
	tab := make(sourceTable)
	src := sourceKey(netip.MustParseAddr("192.0.2.1"))
	for range limit {
		require.True(t, tab.admits(src, limit, false))
		tab.add(src, false)
	}
	require.True(t, tab.full(src, limit))
	require.False(t, tab.admits(src, limit, false), "unproven: full")
	for range limit {
		require.True(t, tab.admits(src, limit, true), "proven: unproven ones do not count")
		tab.add(src, true)
	}
	require.False(t, tab.admits(src, limit, true), "proven: at the limit of proven sessions, and at twice the limit in all")
	tab.prove(src)
	tab.remove(src, true)
	require.False(t, tab.admits(src, limit, true), "4 proven (one confirmed, one ended)")
	tab.remove(src, true)
	require.True(t, tab.admits(src, limit, true))
	require.True(t, tab.admits(src, -1, false), "no limit")
	for range limit - 1 {
		tab.remove(src, false)
	}
	for range limit - 1 {
		tab.remove(src, true)
	}
	require.Empty(t, tab, "forgotten with its last session")
}
