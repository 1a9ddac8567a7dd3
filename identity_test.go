package uxp

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClientIdentity(t *testing.T) {
	allowed, unknown := testKeys(t), testKeys(t)
	psk := testKeys(t).Private
	srvIdentity := IdentityConfig{AllowedClientKeys: []PublicKey{allowed.Public}, PresharedKey: psk}

	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 6, &Config{Identity: srvIdentity}, &Config{Identity: IdentityConfig{ClientPrivateKey: allowed.Private, PresharedKey: psk}}, true)
		time.Sleep(50 * time.Millisecond)
		conns, _, _ := p.srvH.counts()
		require.Equal(t, 1, conns, "the allowed key connects")
		key, ok := p.srvH.conns[0].PeerKey()
		require.True(t, ok)
		require.Equal(t, allowed.Public, key, "the server sees the client's key")
		key, ok = p.cli.Conn().PeerKey()
		require.True(t, ok)
		require.Equal(t, p.keys.Public, key, "the client sees the server's key")

		// Unknown key: an authenticated refusal, and no state at all.
		before := p.srv.Stats()
		_, _, err := p.addClient(t, "10.0.0.3:5000", &Config{Identity: IdentityConfig{ClientPrivateKey: unknown.Private, PresharedKey: psk}})
		require.ErrorIs(t, err, ErrClientRejected)
		st := p.srv.Stats()
		require.Equal(t, before.Handshake.RefusedClientKey+1, st.Handshake.RefusedClientKey)
		require.Equal(t, 1, st.Sessions)
		require.Equal(t, 0, st.HalfOpen, "no state was created for the unknown key")
		require.Equal(t, before.HandshakesCompleted, st.HandshakesCompleted)

		// An anonymous client is refused too.
		_, _, err = p.addClient(t, "10.0.0.4:5000", &Config{Identity: IdentityConfig{PresharedKey: psk}})
		require.ErrorIs(t, err, ErrClientRejected)

		// A wrong pre-shared key never completes, and costs no
		// Diffie-Hellman: mac1 is keyed with the psk.
		processed := p.srv.Stats().Handshake.Processed
		_, _, err = p.addClient(t, "10.0.0.5:5000", &Config{HandshakeTimeout: time.Second, Identity: IdentityConfig{ClientPrivateKey: allowed.Private, PresharedKey: unknown.Private}})
		require.ErrorIs(t, err, ErrHandshakeFailed)
		require.Equal(t, processed, p.srv.Stats().Handshake.Processed, "dropped at mac1, before any Diffie-Hellman")
		// No pre-shared key at all is dropped before any Diffie-Hellman.
		_, _, err = p.addClient(t, "10.0.0.6:5000", &Config{HandshakeTimeout: time.Second, Identity: IdentityConfig{ClientPrivateKey: allowed.Private}})
		require.ErrorIs(t, err, ErrHandshakeFailed)
		require.Equal(t, processed, p.srv.Stats().Handshake.Processed, "dropped at mac1, before any Diffie-Hellman")
		time.Sleep(2 * defaultHandshakeTimeout) // half-open entries of failed attempts expire
		st = p.srv.Stats()
		require.Equal(t, 1, st.Sessions)
		require.Equal(t, 0, st.HalfOpen)
		conns, _, _ = p.srvH.counts()
		require.Equal(t, 1, conns, "no failed client was ever announced")
	})
}

// TestInitiationReplay replays a Noise IK initiation after its session was
// established: the timestamp did not increase, so the server ignores it
// without answering and without creating state.
func TestInitiationReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ck := testKeys(t)
		p := newSimPair(t, 7, nil, nil, false)
		_, rec, err := p.addClient(t, "10.0.0.3:5000", &Config{Identity: IdentityConfig{ClientPrivateKey: ck.Private}})
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
		st := p.srv.Stats()
		require.Equal(t, 1, st.Sessions)
		require.Equal(t, 0, st.HalfOpen)
		init := rec.first(msgInitiation)
		require.Len(t, init, initiationIKSize)

		attacker, err := p.net.Listen("10.0.0.99:6000")
		require.NoError(t, err)
		// Past the window in which the server remembers the confirmed
		// ephemeral key (TestNKInitiationReplay), only the timestamp
		// check stands between a replay and a new half-open session.
		time.Sleep(defaultHandshakeTimeout)
		for range 3 {
			p.net.Inject(attacker.LocalAddr(), p.srvPC.LocalAddr(), init)
		}
		time.Sleep(100 * time.Millisecond)
		st = p.srv.Stats()
		require.Equal(t, uint64(3), st.Handshake.TimestampReplays)
		require.Equal(t, 0, st.HalfOpen, "no state for a replay")
		require.Equal(t, uint64(1), st.HandshakesCompleted)
		got, _ := drainBytes(t, attacker)
		require.Zero(t, got, "a replay is not answered")

		// The same client connects again with a fresh initiation.
		_, _, err = p.addClient(t, "10.0.0.4:5000", &Config{Identity: IdentityConfig{ClientPrivateKey: ck.Private}})
		require.NoError(t, err)
	})
}

// TestNKInitiationReplay replays an anonymous (NK) initiation: within
// HandshakeTimeout of the session's confirmation it costs no
// Diffie-Hellman; later it gets a half-open session that expires
// unannounced (docs/security.md).
func TestNKInitiationReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 10, nil, nil, false)
		_, rec, err := p.addClient(t, "10.0.0.3:5000", nil)
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
		init := rec.first(msgInitiation)
		require.Len(t, init, initiationSize)
		st := p.srv.Stats()
		processed, replays := st.Handshake.Processed, st.Drops.Replay

		attacker, err := p.net.Listen("10.0.0.99:6000")
		require.NoError(t, err)
		p.net.Inject(attacker.LocalAddr(), p.srvPC.LocalAddr(), init)
		time.Sleep(10 * time.Millisecond)
		st = p.srv.Stats()
		require.Equal(t, processed, st.Handshake.Processed, "no Diffie-Hellman for a recent initiation")
		require.Equal(t, replays+1, st.Drops.Replay)
		got, _ := drainBytes(t, attacker)
		require.Zero(t, got)

		time.Sleep(defaultHandshakeTimeout)
		p.net.Inject(attacker.LocalAddr(), p.srvPC.LocalAddr(), init)
		time.Sleep(10 * time.Millisecond)
		st = p.srv.Stats()
		require.Equal(t, processed+1, st.Handshake.Processed, "later, NK has no timestamp check")
		require.Equal(t, 1, st.HalfOpen)
		time.Sleep(2 * defaultHandshakeTimeout)
		st = p.srv.Stats()
		require.Equal(t, 0, st.HalfOpen, "the replayed half-open session expired")
		require.Equal(t, uint64(1), st.SessionsAccepted, "and was never announced")
	})
}

func TestIdentityConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative MaxSessions", Config{MaxSessions: -1}, "MaxSessions"},
		{"zero allowed key", Config{Identity: IdentityConfig{AllowedClientKeys: []PublicKey{{}}}}, "Identity.AllowedClientKeys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ce *ConfigError
			require.ErrorAs(t, tt.cfg.Validate(), &ce)
			require.Equal(t, tt.field, ce.Field)
		})
	}
	ck := testKeys(t)
	s, err := (&IdentityConfig{AuthorizeClient: func(k PublicKey) bool { return k == ck.Public }}).resolve()
	require.NoError(t, err)
	require.True(t, s.admits(&initiation{hasPeerKey: true, peerKey: ck.Public}))
	require.False(t, s.admits(&initiation{hasPeerKey: true, peerKey: testKeys(t).Public}))
	require.False(t, s.admits(&initiation{}), "a callback implies a key is required")
	s, err = (&IdentityConfig{RequireClientKey: true}).resolve()
	require.NoError(t, err)
	require.True(t, s.admits(&initiation{hasPeerKey: true, peerKey: ck.Public}), "any key")
	require.False(t, s.admits(&initiation{}))
	s, err = (&IdentityConfig{}).resolve()
	require.NoError(t, err)
	require.True(t, s.admits(&initiation{}), "anonymous by default")
}

// TestClientIdentityLoopback runs the IK handshake with a pre-shared key
// over real UDP sockets.
func TestClientIdentityLoopback(t *testing.T) {
	ck := testKeys(t)
	psk := testKeys(t).Private
	keys := make(chan PublicKey, 1)
	h := &keyServer{keys: keys}
	srv, kp := startUDPServer(t, h, &Config{Identity: IdentityConfig{AllowedClientKeys: []PublicKey{ck.Public}, PresharedKey: psk}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := Dial(ctx, srv.Addr().String(), nil, &Config{ServerPublicKey: kp.Public, Identity: IdentityConfig{ClientPrivateKey: ck.Private, PresharedKey: psk}})
	require.NoError(t, err)
	defer cli.Close()
	select {
	case k := <-keys:
		require.Equal(t, ck.Public, k, "OnNewConnComing sees the client's key")
	case <-ctx.Done():
		t.Fatal("the server never announced the session")
	}
	_, err = Dial(ctx, srv.Addr().String(), nil, &Config{ServerPublicKey: kp.Public, Identity: IdentityConfig{ClientPrivateKey: testKeys(t).Private, PresharedKey: psk}})
	require.ErrorIs(t, err, ErrClientRejected)
}

type keyServer struct {
	NopServerHandler
	keys chan PublicKey
}

func (s *keyServer) OnNewConnComing(c *Conn) {
	if k, ok := c.PeerKey(); ok {
		s.keys <- k
	}
}
