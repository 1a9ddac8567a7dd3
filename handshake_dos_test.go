package uxp

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"
)

// seededReader is a deterministic io.Reader for pure-code tests.
type seededReader struct{ r *mrand.ChaCha8 }

func newSeededReader(seed byte) *seededReader {
	var s [32]byte
	s[0] = seed
	return &seededReader{mrand.NewChaCha8(s)}
}

func (s *seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func testInitiation(t testing.TB, server PublicKey, id clientIdentity) *clientHandshake {
	t.Helper()
	c, err := newClientHandshake(server, ChaCha20Poly1305, fecParams{}, 7, time.Unix(1000, 0), rand.Reader, id, helloParams{})
	require.NoError(t, err)
	return c
}

func TestCookieReply(t *testing.T) {
	kp := testKeys(t)
	t0 := time.Unix(5000, 0)
	cc := newCookieChecker(kp.Public, newSeededReader(1))
	encKey := labelKey(cookieLabel, kp.Public)
	addr := netip.MustParseAddrPort("192.0.2.7:4000")
	for _, id := range []clientIdentity{{}, {static: testStatic(t)}} {
		hs := testInitiation(t, kp.Public, id)
		init := append([]byte(nil), hs.initiation()...)
		require.False(t, cc.validMAC2(init, addr, t0), "no cookie handed out yet")

		reply, err := cc.reply(init, addr, t0)
		require.NoError(t, err)
		require.Less(t, len(reply), len(init), "a cookie reply must not amplify")
		cookie, err := openCookieReply(reply[:], init, &encKey)
		require.NoError(t, err)

		putMAC2(init, &cookie)
		require.NoError(t, checkInitiation(init, ptr(mac1Key(kp.Public, nil))), "mac2 does not disturb mac1")
		require.True(t, cc.validMAC2(init, addr, t0.Add(time.Minute)))
		require.False(t, cc.validMAC2(init, netip.MustParseAddrPort("192.0.2.7:4001"), t0), "cookie is bound to the port")
		require.False(t, cc.validMAC2(init, netip.MustParseAddrPort("192.0.2.8:4000"), t0), "cookie is bound to the IP")
		require.False(t, cc.validMAC2(init, addr, t0.Add(cookieSecretLife)), "the secret rotates after two minutes")

		// The reply is bound to the initiation's mac1 and to the server.
		other := testInitiation(t, kp.Public, id)
		_, err = openCookieReply(reply[:], other.initiation(), &encKey)
		require.Error(t, err)
		wrongKey := labelKey(cookieLabel, testKeys(t).Public)
		_, err = openCookieReply(reply[:], hs.initiation(), &wrongKey)
		require.ErrorIs(t, err, errHandshakeAuth)
		for i := range cookieReplySize {
			bad := reply
			bad[i] ^= 0x10
			_, err := openCookieReply(bad[:], hs.initiation(), &encKey)
			require.Error(t, err, "byte %d", i)
		}
		for n := range cookieReplySize {
			_, err := openCookieReply(reply[:n], hs.initiation(), &encKey)
			require.ErrorIs(t, err, errHandshakeMalformed)
		}
		t0 = t0.Add(3 * cookieSecretLife)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(100, 0)
	v4 := netip.MustParseAddr("198.51.100.1")
	tests := []struct {
		name string
		run  func(t *testing.T, r *rateLimiter)
	}{
		{"burst then refill", func(t *testing.T, r *rateLimiter) {
			for i := range handshakeBurst {
				require.True(t, r.allow(v4, t0), "token %d", i)
			}
			require.False(t, r.allow(v4, t0))
			interval := time.Second / handshakeRate
			require.False(t, r.allow(v4, t0.Add(interval-1)))
			require.True(t, r.allow(v4, t0.Add(interval)), "one token per interval")
			require.False(t, r.allow(v4, t0.Add(interval)))
			for i := range handshakeBurst {
				require.True(t, r.allow(v4, t0.Add(time.Hour)), "refilled to the burst, not beyond: %d", i)
			}
			require.False(t, r.allow(v4, t0.Add(time.Hour)))
		}},
		{"sources are independent", func(t *testing.T, r *rateLimiter) {
			for range handshakeBurst {
				r.allow(v4, t0)
			}
			require.False(t, r.allow(v4, t0))
			require.True(t, r.allow(netip.MustParseAddr("198.51.100.2"), t0))
			require.False(t, r.allow(netip.MustParseAddr("::ffff:198.51.100.1"), t0), "IPv4-mapped is the same source")
		}},
		{"IPv6 by /64", func(t *testing.T, r *rateLimiter) {
			for i := range handshakeBurst {
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 15: byte(i)})
				require.True(t, r.allow(a, t0))
			}
			require.False(t, r.allow(netip.MustParseAddr("2001:db8::ffff"), t0), "same /64")
			require.True(t, r.allow(netip.MustParseAddr("2001:db8:0:1::1"), t0), "another /64")
		}},
		{"table is bounded and fails closed", func(t *testing.T, r *rateLimiter) {
			for i := range 3 {
				require.True(t, r.allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0))
			}
			require.Equal(t, 3, r.len())
			require.False(t, r.allow(netip.AddrFrom4([4]byte{10, 0, 0, 9}), t0), "full")
			require.True(t, r.allow(netip.AddrFrom4([4]byte{10, 0, 0, 9}), t0.Add(time.Second)), "refilled buckets were swept")
			require.LessOrEqual(t, r.len(), 3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newRateLimiter(handshakeRate, handshakeBurst, 3)) })
	}
}

func TestResetToken(t *testing.T) {
	kp := testKeys(t)
	t0 := time.Unix(100, 0)
	from := netip.MustParseAddrPort("192.0.2.1:5000")
	before := newResetSender(kp.Private)
	after := newResetSender(kp.Private) // a restarted server: same key, no state
	other := newResetSender(testKeys(t).Private)

	pkt := make([]byte, minTransportSize)
	putTransportHeader(pkt, 0xabcdef, 3, 0)
	r1, ok := before.answer(pkt, from, t0)
	require.True(t, ok)
	r2, ok := after.answer(pkt, from, t0)
	require.True(t, ok)
	require.Equal(t, r1, r2, "the token survives a restart")
	r3, _ := other.answer(pkt, from, t0)
	require.NotEqual(t, r1, r3, "another server key gives another token")
	require.Less(t, len(r1), len(pkt), "a reset is smaller than its trigger")

	id, tok, ok := parseReset(r1[:])
	require.True(t, ok)
	require.Equal(t, uint32(0xabcdef), id)
	want := resetToken(ptr(resetKey(kp.Private)), 0xabcdef)
	require.True(t, resetMatches(&tok, &want))
	notWant := resetToken(ptr(resetKey(kp.Private)), 0xabcdee)
	require.False(t, resetMatches(&tok, &notWant), "tokens differ per session")

	_, ok = before.answer(r1[:], from, t0)
	require.False(t, ok, "a reset is never answered")
	_, ok = before.answer(pkt[:resetSize], from, t0)
	require.False(t, ok, "nothing is answered with a packet as large as itself")

	limited := newResetSender(kp.Private)
	sent := 0
	for range 100 {
		if _, ok := limited.answer(pkt, from, t0); ok {
			sent++
		}
	}
	require.Equal(t, resetBurst, sent, "resets are rate limited per source")

	for n := range resetSize + 2 {
		b := append(append([]byte(nil), r1[:]...), 0)[:n]
		_, _, ok := parseReset(b)
		require.Equal(t, n == resetSize, ok, "length %d", n)
	}
	bad := r1
	bad[2] = 1
	_, _, ok = parseReset(bad[:])
	require.False(t, ok, "reserved bytes must be zero")
}

func TestTimestampTable(t *testing.T) {
	a, b := testKeys(t).Public, testKeys(t).Public
	tt := newTimestampTable(2)
	require.True(t, tt.fresh(a, 10))
	tt.accept(a, 10)
	require.False(t, tt.fresh(a, 10), "equal is a replay")
	require.False(t, tt.fresh(a, 9))
	require.True(t, tt.fresh(a, 11))
	require.True(t, tt.fresh(b, 1), "per key")
	tt.accept(b, 1)
	tt.accept(testKeys(t).Public, 5)
	require.Len(t, tt.last, 2, "bounded")
}

func testStatic(t testing.TB) *noise.DHKey {
	t.Helper()
	return ptr(dhKey(testKeys(t)))
}

func TestHandshakeIK(t *testing.T) {
	kp := testKeys(t)
	ck := testKeys(t)
	psk := bytes.Repeat([]byte{7}, KeySize)
	idKey := clientIdentity{static: ptr(dhKey(ck))}
	tests := []struct {
		name       string
		client     clientIdentity
		serverPSK  []byte
		wantFlags  byte
		wantMAC1OK bool // mac1 is keyed with the server's psk
		wantReadOK bool
		wantRespOK bool
	}{
		{"NK", clientIdentity{}, nil, 0, true, true, true},
		{"IK", idKey, nil, flagIdentity, true, true, true},
		{"IK psk2", clientIdentity{static: idKey.static, psk: psk}, psk, flagIdentity | flagPSK, true, true, true},
		{"NK psk2", clientIdentity{psk: psk}, psk, flagPSK, true, true, true},
		{"psk mismatch", clientIdentity{static: idKey.static, psk: psk}, bytes.Repeat([]byte{8}, KeySize), flagIdentity | flagPSK, false, false, false},
		{"client has psk, server none", clientIdentity{psk: psk}, nil, flagPSK, false, false, false},
		{"server has psk, client none", idKey, psk, flagIdentity, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 9, time.Unix(0, 42), rand.Reader, tt.client, helloParams{})
			require.NoError(t, err)
			pkt := c.initiation()
			require.Equal(t, tt.wantFlags, pkt[3])
			require.Len(t, pkt, initiationLen(tt.wantFlags))
			err = checkInitiation(pkt, ptr(mac1Key(kp.Public, tt.serverPSK)))
			if !tt.wantMAC1OK {
				require.ErrorIs(t, err, errHandshakeMAC, "rejected before any Diffie-Hellman")
				// What a server would do without the mac1 check: still no
				// session.
				if h, err := readInitiation(serverStatic(kp), tt.serverPSK, pkt, rand.Reader); err == nil {
					tok := [resetTokenSize]byte{}
					resp, _, err := h.writeResponse(55, statusOK, fecParams{}, &tok)
					require.NoError(t, err)
					_, err = c.consumeResponse(resp[:])
					require.Error(t, err, "a wrong psk never completes")
				}
				return
			}
			require.NoError(t, err)
			h, err := readInitiation(serverStatic(kp), tt.serverPSK, pkt, rand.Reader)
			if !tt.wantReadOK {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, uint64(42), h.in.timestamp)
			require.Equal(t, tt.client.static != nil, h.in.hasPeerKey)
			if h.in.hasPeerKey {
				require.Equal(t, ck.Public, h.in.peerKey, "the server learns the client's key")
			}
			tok := [resetTokenSize]byte{1, 2, 3}
			resp, skeys, err := h.writeResponse(55, statusOK, fecParams{}, &tok)
			require.NoError(t, err)
			require.Less(t, len(resp), len(pkt))
			r, err := c.consumeResponse(resp[:])
			if !tt.wantRespOK {
				require.Error(t, err, "a wrong psk never completes")
				return
			}
			require.NoError(t, err)
			require.Equal(t, uint32(55), r.id)
			require.Equal(t, tok, r.token)
			require.Equal(t, skeys.send, r.keys.recv)
			require.Equal(t, skeys.recv, r.keys.send)
		})
	}
}

func dhKey(kp KeyPair) noiseDHKey {
	return noiseDHKey{Private: kp.Private[:], Public: kp.Public[:]}
}

type noiseDHKey = noise.DHKey
