package uxp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
