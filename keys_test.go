package uxp

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	kp := testKeys(t)
	pub, err := ParsePublicKey(kp.Public.String())
	require.NoError(t, err)
	require.Equal(t, kp.Public, pub)
	priv, err := ParsePrivateKey(kp.Private.String())
	require.NoError(t, err)
	derived, err := priv.PublicKey()
	require.NoError(t, err)
	require.Equal(t, kp.Public, derived)
	for _, bad := range []string{"", "not base64!", "AAAA", PublicKey{}.String()} {
		_, err := ParsePublicKey(bad)
		require.Error(t, err, "%q", bad)
	}
	var k PublicKey
	require.NoError(t, k.UnmarshalText([]byte(kp.Public.String())))
	require.Equal(t, kp.Public, k)
}

// TestReadPrivateKeyFile reads the format `uxp keygen -private-out` writes
// (base64 and a newline) and names the file when it cannot.
func TestReadPrivateKeyFile(t *testing.T) {
	kp := testKeys(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(good, []byte(kp.Private.String()+"\n"), 0o600))
	k, err := ReadPrivateKeyFile(good)
	require.NoError(t, err)
	require.Equal(t, kp.Private, k)

	bad := filepath.Join(dir, "bad.key")
	require.NoError(t, os.WriteFile(bad, []byte("not a key\n"), 0o600))
	_, err = ReadPrivateKeyFile(bad)
	require.ErrorContains(t, err, bad)
	_, err = ReadPrivateKeyFile(filepath.Join(dir, "missing.key"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
