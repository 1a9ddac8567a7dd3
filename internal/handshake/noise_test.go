package handshake

import (
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/wire"
)

func dhKeyPair(t *testing.T) noise.DHKey {
	t.Helper()
	k, err := noise.DH25519.GenerateKeypair(rand.Reader)
	require.NoError(t, err)
	return k
}

// TestNoiseConfig: the patterns the flags select give messages of the
// specified sizes, both sides agree through the prologue, and psk2 is
// mixed in only when flagged.
func TestNoiseConfig(t *testing.T) {
	server, client := dhKeyPair(t), dhKeyPair(t)
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

// TestX25519SuiteMatchesDH25519: the one-ladder Diffie-Hellman gives what
// noise.DH25519 gives, for the keys it holds and for any other, reads its
// private key from the reader the same way, rejects a low-order peer key,
// and keeps the protocol name.
func TestX25519SuiteMatchesDH25519(t *testing.T) {
	kp := dhKeyPair(t)
	static, err := NewStaticKey([32]byte(kp.Private))
	require.NoError(t, err)
	require.Equal(t, kp.Public, static.DH.Public)
	s := NewX25519Suite(static)
	require.Equal(t, noiseSuite.Name(), s.Name())
	for i := range 8 {
		eph, err := s.GenerateKeypair(newSeededReader(byte(i)))
		require.NoError(t, err)
		want, err := noise.DH25519.GenerateKeypair(newSeededReader(byte(i)))
		require.NoError(t, err)
		require.Equal(t, want, eph)
		peer, err := noise.DH25519.GenerateKeypair(rand.Reader)
		require.NoError(t, err)
		for _, priv := range [][]byte{eph.Private, static.DH.Private, peer.Private} {
			got, err := s.DH(priv, peer.Public)
			require.NoError(t, err)
			want, err := noise.DH25519.DH(priv, peer.Public)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
		var lowOrder [32]byte // the zero point
		_, err = s.DH(eph.Private, lowOrder[:])
		require.Error(t, err, "a low-order peer key gives the all-zero secret")
		_, err = s.DH(eph.Private, peer.Public[:31])
		require.Error(t, err)
	}
}

// TestMessagesRoundTrip: an initiation built by NewClient passes
// CheckInitiation and ReadInitiation with its hello intact, the response
// WriteResponse seals reads back with matching keys, and a response for
// another index or cut short is refused without spoiling the handshake.
func TestMessagesRoundTrip(t *testing.T) {
	server := dhKeyPair(t)
	static, err := NewStaticKey([32]byte(server.Private))
	require.NoError(t, err)
	client := dhKeyPair(t)
	anyCipher := func(byte) bool { return true }
	for _, tt := range []struct {
		name string
		cfg  ClientConfig
	}{
		{"NK", ClientConfig{}},
		{"IK psk2", ClientConfig{Static: &client, PSK: make([]byte, 32)}},
		{"NK extended", ClientConfig{ConnectData: []byte("hello")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Server = [32]byte(server.Public)
			cfg.Index = 42
			cfg.Hello = wire.Hello{Timestamp: 7, MTU: 1400, Lanes: 2}
			c, err := NewClient(cfg, rand.Reader)
			require.NoError(t, err)
			init := c.Initiation()
			key := MAC1Key(cfg.Server, cfg.PSK)
			require.NoError(t, CheckInitiation(init, &key, anyCipher))
			require.ErrorIs(t, CheckInitiation(init, &key, func(byte) bool { return false }), ErrMalformed)
			_, _, err = ReadInitiation(static, nil, init, rand.Reader, make([]byte, MaxInitiationSize))
			if cfg.PSK != nil {
				require.ErrorIs(t, err, ErrPSK, "psk flag against a server without one")
			}
			s, hello, err := ReadInitiation(static, cfg.PSK, init, rand.Reader, make([]byte, MaxInitiationSize))
			require.NoError(t, err)
			require.Equal(t, uint64(7), hello.Timestamp())
			require.Equal(t, uint16(1400), hello.MTU())
			peer, ok := s.PeerStatic()
			require.Equal(t, cfg.Static != nil, ok)
			if ok {
				require.Equal(t, [32]byte(client.Public), peer)
			}
			payload := make([]byte, wire.ResponsePayloadSize)
			if cfg.ConnectData != nil {
				payload = make([]byte, wire.ResponsePayloadSize+2)
			}
			resp, skeys, err := s.WriteResponse(99, payload)
			require.NoError(t, err)
			require.Less(t, len(resp), len(init), "never amplifies")
			_, err = c.ReadResponse(resp[:len(resp)-1], 0)
			require.Error(t, err)
			r, err := c.ReadResponse(resp, 2)
			require.NoError(t, err)
			require.Equal(t, uint32(99), r.SessionID)
			require.Equal(t, skeys.Send, r.Keys.Recv)
			require.Equal(t, skeys.Recv, r.Keys.Send)
		})
	}
}
