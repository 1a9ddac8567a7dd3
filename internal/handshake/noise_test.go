package handshake

import (
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/wire"
)

// TestNoiseConfig: the patterns the flags select give messages of the
// specified sizes, both sides agree through the prologue, and psk2 is
// mixed in only when flagged.
func TestNoiseConfig(t *testing.T) {
	server, err := noise.DH25519.GenerateKeypair(rand.Reader)
	require.NoError(t, err)
	client, err := noise.DH25519.GenerateKeypair(rand.Reader)
	require.NoError(t, err)
	psk := make([]byte, 32)
	static, err := NewStaticKey([32]byte(server.Private))
	require.NoError(t, err)
	for _, flags := range []byte{0, wire.FlagIK, wire.FlagPSK, wire.FlagIK | wire.FlagPSK} {
		hdr := make([]byte, wire.InitiationHeaderSize)
		wire.PutInitiationHeader(hdr, 1, flags, 7)
		require.Equal(t, append([]byte(prologueLabel), hdr...), Prologue(hdr))

		ccfg := NoiseConfig(flags, true, Prologue(hdr), rand.Reader, NewX25519Suite(nil))
		ccfg.PeerStatic = server.Public
		scfg := NoiseConfig(flags, false, Prologue(hdr), rand.Reader, NewX25519Suite(static))
		scfg.StaticKeypair = static.DH
		if flags&wire.FlagIK != 0 {
			ccfg.StaticKeypair = client
		}
		if flags&wire.FlagPSK != 0 {
			ccfg.PresharedKey, scfg.PresharedKey = psk, psk
		}
		c, err := noise.NewHandshakeState(ccfg)
		require.NoError(t, err)
		s, err := noise.NewHandshakeState(scfg)
		require.NoError(t, err)
		msg, _, _, err := c.WriteMessage(nil, make([]byte, wire.InitiationPayloadSize))
		require.NoError(t, err)
		require.Len(t, msg, InitiationLen(flags)-wire.InitiationHeaderSize-2*MACSize, "flags %d", flags)
		_, _, _, err = s.ReadMessage(nil, msg)
		require.NoError(t, err)
		resp, _, _, err := s.WriteMessage(nil, make([]byte, wire.ResponsePayloadSize))
		require.NoError(t, err)
		require.Len(t, resp, ResponseSize-wire.ResponseHeaderSize)
		_, cs1, _, err := c.ReadMessage(nil, resp)
		require.NoError(t, err)
		require.NotNil(t, cs1)
	}
}
