// Package handshake holds uxp's handshake defences, the security-review
// boundary in front of Noise: mac1 and mac2, cookie replies, stateless
// reset tokens, the per-source rate limiter and the IK timestamp table
// (docs/protocol.md sections 4.3, 4.8 and 4.9; docs/security.md).
//
// The package is pure: it does no I/O and reads no clock; randomness and
// now are passed in. Its types are not safe for concurrent use: each has
// one owner goroutine, which the caller names.
package handshake

import (
	"errors"

	"golang.org/x/crypto/blake2s"
)

/* Specification constants */
const (
	// MACSize is the size of mac1, mac2, a cookie and a reset token.
	MACSize = 16

	MAC1Label   = "mac1----"
	CookieLabel = "cookie--"
	ResetLabel  = "reset---"
)

// Errors of the handshake's own checks. The root package reports them
// as they are.
var (
	ErrMalformed = errors.New("uxp: malformed handshake message")
	ErrAuth      = errors.New("uxp: handshake message failed to authenticate")
)

// MAC1Offset and MAC2Offset locate an initiation's MACs: its last 32 bytes.
func MAC1Offset(pkt []byte) int { return len(pkt) - 2*MACSize }

// MAC2Offset locates an initiation's mac2: its last 16 bytes.
func MAC2Offset(pkt []byte) int { return len(pkt) - MACSize }

// LabelKey returns BLAKE2s-256(label || server public key). It keys mac1
// (MAC1Label) and the cookie reply's encryption (CookieLabel).
func LabelKey(label string, server [32]byte) [32]byte {
	return hash256([]byte(label), server[:])
}

// hash256 is BLAKE2s-256 of the concatenated parts.
func hash256(parts ...[]byte) [32]byte {
	h, _ := blake2s.New256(nil)
	for _, p := range parts {
		h.Write(p)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// MAC1Key derives the key for an initiation's mac1 from the server's public
// key and, when one is configured, the pre-shared key:
//
//	no psk:   BLAKE2s-256("mac1----" || server public key)
//	with psk: BLAKE2s-256("mac1----" || server public key || psk)
//
// Anyone who knows the server's public key (and its psk, if it has one)
// can compute it; it lets the server reject datagrams from those who don't
// before doing any Diffie-Hellman and without keeping state. With a psk, an
// initiation from a client without it (or with another one) fails mac1
// exactly as one for another server does: it costs one BLAKE2s, and the
// server's silence does not tell whether it has a psk.
func MAC1Key(server [32]byte, psk []byte) [32]byte {
	if psk == nil {
		return LabelKey(MAC1Label, server)
	}
	return hash256([]byte(MAC1Label), server[:], psk)
}

// KeyedMAC returns BLAKE2s-128 keyed by key over msg.
func KeyedMAC(key []byte, msg []byte) [MACSize]byte {
	h, _ := blake2s.New128(key)
	h.Write(msg)
	var m [MACSize]byte
	h.Sum(m[:0])
	return m
}

// ComputeMAC1 returns mac1 for an initiation: keyed by key, over everything
// before the mac1 field.
func ComputeMAC1(key *[32]byte, msg []byte) [MACSize]byte {
	return KeyedMAC(key[:], msg[:MAC1Offset(msg)])
}

// PutMAC2 writes mac2 for cookie into an initiation (mac1 already set).
func PutMAC2(pkt []byte, cookie *[MACSize]byte) {
	mac := KeyedMAC(cookie[:], pkt[:MAC2Offset(pkt)])
	copy(pkt[MAC2Offset(pkt):], mac[:])
}
