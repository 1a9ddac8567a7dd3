package crypto

import "strconv"

// Suite identifies a packet AEAD construction. Its numeric value is sent on
// the wire during the handshake, so existing values never change.
type Suite uint8

// Specification constants: the cipher suite identifiers.
const (
	// ChaCha20Poly1305 is RFC 8439 ChaCha20-Poly1305 with a 96-bit nonce of
	// four zero bytes followed by the little-endian packet counter. It is
	// the default suite.
	ChaCha20Poly1305 Suite = 1

	// Salsa20Poly1305 is Salsa20 with a Poly1305 tag over the RFC 8439 AEAD
	// layout. See the package documentation for the exact construction.
	Salsa20Poly1305 Suite = 2

	// AES256GCM is AES-256 in Galois/Counter Mode (NIST SP 800-38D, the
	// standard library's crypto/aes and crypto/cipher) with the same 96-bit
	// nonce layout as ChaCha20Poly1305 and a 16-byte tag. It is the fast
	// suite on CPUs with AES instructions; see [HasAESHardware].
	AES256GCM Suite = 3
)

// String returns the suite's name, "chacha20-poly1305", "salsa20-poly1305"
// or "aes-256-gcm", or "suite(N)" for an unknown value N.
func (s Suite) String() string {
	switch s {
	case ChaCha20Poly1305:
		return "chacha20-poly1305"
	case Salsa20Poly1305:
		return "salsa20-poly1305"
	case AES256GCM:
		return "aes-256-gcm"
	default:
		return "suite(" + strconv.Itoa(int(s)) + ")"
	}
}

// Valid reports whether s is a suite that [NewAEAD] accepts.
func (s Suite) Valid() bool {
	return s == ChaCha20Poly1305 || s == Salsa20Poly1305 || s == AES256GCM
}
