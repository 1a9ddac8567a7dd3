package uxp

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
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
