package handshake

import (
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"
)

// TestX25519SuiteMatchesDH25519: the one-ladder Diffie-Hellman gives what
// noise.DH25519 gives, for the keys it holds and for any other, reads its
// private key from the reader the same way, rejects a low-order peer key,
// and keeps the protocol name.
func TestX25519SuiteMatchesDH25519(t *testing.T) {
	kp, err := noise.DH25519.GenerateKeypair(rand.Reader)
	require.NoError(t, err)
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
