package uxp

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/testutil"
)

// newSeededReader is a deterministic io.Reader for pure-code tests.
var newSeededReader = testutil.SeededReader

func testInitiation(t testing.TB, server PublicKey, id clientIdentity) *clientHandshake {
	t.Helper()
	c, err := newClientHandshake(server, ChaCha20Poly1305, fecParams{}, 7, time.Unix(1000, 0), rand.Reader, id, helloParams{})
	require.NoError(t, err)
	return c
}

func ptr[T any](v T) *T { return &v }

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
