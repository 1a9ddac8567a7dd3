package uxp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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

// TestExtendedHandshakeSizes: the extended initiation carries connect data
// of every allowed size, NK and IK, and every answer to it (the longest
// reason, the most accept data) stays smaller than the initiation: the
// server never amplifies.
func TestExtendedHandshakeSizes(t *testing.T) {
	kp := testKeys(t)
	static := serverStatic(kp)
	mk := mac1Key(kp.Public, nil)
	for _, ik := range []bool{false, true} {
		for _, n := range []int{0, 1, 200, 500, MaxConnectDataSize} {
			t.Run(fmt.Sprintf("ik=%v/n=%d", ik, n), func(t *testing.T) {
				var id clientIdentity
				fixed := initiationSize
				if ik {
					id = fuzzIdentity(t, flagIdentity)
					fixed = initiationIKSize
				}
				data := bytes.Repeat([]byte{0x3c}, n)
				hello := helloParams{mtu: 1300, lanes: 3, minMTU: 700, connectData: data}
				for _, answer := range []struct {
					status byte
					info   answerInfo
				}{
					{statusOK, answerInfo{mtu: 1400, lanes: 3, data: bytes.Repeat([]byte{1}, MaxAcceptDataSize)}},
					{statusRejected, answerInfo{code: 77, data: bytes.Repeat([]byte{'x'}, 400)}},
					{statusIncompatible, answerInfo{mtu: 1400, lanes: 2}},
				} {
					c, err := newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 5, time.Now(), rand.Reader, id, hello)
					require.NoError(t, err)
					pkt := c.initiation()
					require.Len(t, pkt, max(minExtInitiation, fixed+2+n))
					require.LessOrEqual(t, len(pkt), maxInitiationSize)
					require.NoError(t, checkInitiation(pkt, &mk))
					h, err := readInitiation(static, nil, pkt, rand.Reader)
					require.NoError(t, err)
					require.Equal(t, data, h.in.connectData)
					require.Equal(t, 1300, h.in.peerMTU)
					require.Equal(t, 3, h.in.peerLanes)
					require.Equal(t, 700, h.in.peerMinMTU)
					var tok [resetTokenSize]byte
					resp, _, err := h.writeAnswer(42, answer.status, fecParams{}, &tok, answer.info)
					require.NoError(t, err)
					require.Less(t, len(resp), len(pkt), "no amplification")
					r, err := c.consumeResponse(resp)
					switch answer.status {
					case statusOK:
						require.NoError(t, err)
						require.Equal(t, answer.info.data, r.acceptData)
						require.Equal(t, 1400, r.peerMTU)
					case statusRejected:
						require.Equal(t, &RejectError{Code: 77, Reason: string(answer.info.data[:MaxRejectReasonSize])}, err)
					case statusIncompatible:
						require.Equal(t, &incompatibleStatus{mtu: 1400, lanes: 2}, err)
					}
				}
			})
		}
	}
	t.Run("malformed", func(t *testing.T) {
		c, err := newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 5, time.Now(), rand.Reader, clientIdentity{}, helloParams{connectData: []byte("x")})
		require.NoError(t, err)
		pkt := c.initiation()
		for _, n := range []int{minExtInitiation - 1, maxInitiationSize + 1} {
			bad := make([]byte, n)
			copy(bad, pkt[:8])
			require.Error(t, checkInitiation(bad, &mk), "length %d", n)
		}
		_, err = newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 5, time.Now(), rand.Reader, clientIdentity{}, helloParams{connectData: make([]byte, MaxConnectDataSize+1)})
		require.Error(t, err)
		// Responses of the wrong form are dropped, and the handshake
		// still takes the genuine one.
		h, err := readInitiation(static, nil, pkt, rand.Reader)
		require.NoError(t, err)
		resp, _, err := h.writeAnswer(9, statusOK, fecParams{}, &[resetTokenSize]byte{}, answerInfo{data: []byte("ticket")})
		require.NoError(t, err)
		for n := range len(resp) {
			_, err := c.consumeResponse(resp[:n])
			require.Error(t, err)
		}
		r, err := c.consumeResponse(resp)
		require.NoError(t, err)
		require.Equal(t, []byte("ticket"), r.acceptData)
	})
}
