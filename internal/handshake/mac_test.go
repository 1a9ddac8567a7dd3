package handshake

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMAC1KeyVector pins mac1's key derivation (docs/protocol.md section
// 4.3), without and with a pre-shared key. The values were checked against
// Python's hashlib.blake2s.
func TestMAC1KeyVector(t *testing.T) {
	var pub [32]byte
	psk := make([]byte, 32)
	for i := range pub {
		pub[i], psk[i] = byte(i), byte(0x80+i)
	}
	k := MAC1Key(pub, nil)
	require.Equal(t, "4fb2527ac956001553dc1ad9b55171b7d9daa3de1cdbcd71451830170c7e6cac", hex.EncodeToString(k[:]))
	k = MAC1Key(pub, psk)
	require.Equal(t, "4917781e21bc70c9d6f2288ec221ff6f45c17f2941e92e8e49aa6af7e1809053", hex.EncodeToString(k[:]))
}
