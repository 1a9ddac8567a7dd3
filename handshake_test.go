package uxp

import (
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/kcpx"
)

func newLoopbackPC(t testing.TB) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc
}

func serverStatic(kp KeyPair) *handshake.StaticKey {
	k, err := newStaticKey(kp.Private)
	if err != nil {
		panic(err)
	}
	return k
}

func TestHandshakeRoundTrip(t *testing.T) {
	for _, cipher := range []Cipher{ChaCha20Poly1305, Salsa20Poly1305} {
		kp := testKeys(t)
		c, err := newClientHandshake(kp.Public, cipher, fecParams{}, 77, time.Unix(1, 0), rand.Reader, clientIdentity{}, helloParams{})
		require.NoError(t, err)
		mk := mac1Key(kp.Public, nil)
		require.NoError(t, checkInitiation(c.initiation(), &mk))
		in, resp, skeys, err := respond(serverStatic(kp), c.initiation(), 1234, fecParams{}, rand.Reader)
		require.NoError(t, err)
		require.Equal(t, uint32(77), in.senderIndex)
		require.Equal(t, cipher, in.cipher)
		require.LessOrEqual(t, len(resp), len(c.initiation()), "the server must not amplify")
		r, err := c.consumeResponse(resp[:])
		id, ckeys := r.id, r.keys
		require.NoError(t, err)
		require.Equal(t, uint32(1234), id)
		require.Equal(t, skeys.send, ckeys.recv)
		require.Equal(t, skeys.recv, ckeys.send)
		require.NotEqual(t, ckeys.send, ckeys.recv, "each direction has its own key")
	}
}

func TestHandshakeRejects(t *testing.T) {
	kp := testKeys(t)
	mk := mac1Key(kp.Public, nil)
	fresh := func() *clientHandshake {
		c, err := newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 1, time.Now(), rand.Reader, clientIdentity{}, helloParams{})
		require.NoError(t, err)
		return c
	}
	t.Run("wrong server key fails mac1", func(t *testing.T) {
		other := testKeys(t)
		c, err := newClientHandshake(other.Public, ChaCha20Poly1305, fecParams{}, 1, time.Now(), rand.Reader, clientIdentity{}, helloParams{})
		require.NoError(t, err)
		require.ErrorIs(t, checkInitiation(c.initiation(), &mk), errHandshakeMAC)
	})
	t.Run("wrong server key with forged mac1 fails decryption", func(t *testing.T) {
		other := testKeys(t)
		c, err := newClientHandshake(other.Public, ChaCha20Poly1305, fecParams{}, 1, time.Now(), rand.Reader, clientIdentity{}, helloParams{})
		require.NoError(t, err)
		_, _, _, err = respond(serverStatic(kp), c.initiation(), 1, fecParams{}, rand.Reader)
		require.Error(t, err)
	})
	t.Run("downgrade of the cipher byte", func(t *testing.T) {
		// An attacker rewrites the cipher and fixes up mac1 (anyone can):
		// the prologue binds the header, so the handshake still fails.
		c := fresh()
		pkt := append([]byte(nil), c.initiation()...)
		pkt[2] = byte(Salsa20Poly1305)
		mac := computeMAC1(&mk, pkt)
		copy(pkt[mac1Offset(pkt):], mac[:])
		require.NoError(t, checkInitiation(pkt, &mk))
		_, _, _, err := respond(serverStatic(kp), pkt, 1, fecParams{}, rand.Reader)
		require.Error(t, err)
	})
	t.Run("bad version and lengths", func(t *testing.T) {
		c := fresh()
		pkt := append([]byte(nil), c.initiation()...)
		pkt[1] = 2
		require.ErrorIs(t, checkInitiation(pkt, &mk), errHandshakeMalformed)
		for n := range initiationSize {
			require.Error(t, checkInitiation(c.initiation()[:n], &mk))
		}
		require.Error(t, checkInitiation(append(c.initiation(), 0), &mk))
	})
	t.Run("forged response leaves the handshake usable", func(t *testing.T) {
		c := fresh()
		_, resp, _, err := respond(serverStatic(kp), c.initiation(), 9, fecParams{}, rand.Reader)
		require.NoError(t, err)
		for i := 12; i < responseSize; i++ {
			bad := resp
			bad[i] ^= 0x40
			_, err := c.consumeResponse(bad[:])
			require.Error(t, err, "byte %d", i)
		}
		for n := range responseSize {
			_, err := c.consumeResponse(resp[:n])
			require.Error(t, err)
		}
		_, err = c.consumeResponse(resp[:])
		require.NoError(t, err, "the genuine response still works after forgeries")
	})
	t.Run("response for another index", func(t *testing.T) {
		c := fresh()
		_, resp, _, err := respond(serverStatic(kp), c.initiation(), 9, fecParams{}, rand.Reader)
		require.NoError(t, err)
		resp[8] ^= 1
		_, err = c.consumeResponse(resp[:])
		require.ErrorIs(t, err, errHandshakeMalformed)
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

// TestKCPLinkname guards the go:linkname into kcp-go (see internal/kcpx).
func TestKCPLinkname(t *testing.T) {
	now := kcpx.Now()
	time.Sleep(5 * time.Millisecond)
	require.GreaterOrEqual(t, int32(kcpx.Now()-now), int32(4))
}
