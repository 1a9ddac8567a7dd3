package uxp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// KeySize is the length in bytes of X25519 public and private keys.
const KeySize = 32

// PublicKey is an X25519 public key. Its text form is standard base64.
type PublicKey [KeySize]byte

// PrivateKey is an X25519 private key. Its text form is standard base64.
// Keep it secret: load it from a file or the environment, not a flag.
type PrivateKey [KeySize]byte

// KeyPair is a static X25519 key pair, as used by a Server.
type KeyPair struct {
	Private PrivateKey
	Public  PublicKey
}

// GenerateKey returns a new random static key pair from crypto/rand.
func GenerateKey() (KeyPair, error) {
	var kp KeyPair
	if _, err := rand.Read(kp.Private[:]); err != nil {
		return KeyPair{}, fmt.Errorf("uxp: generate key: %w", err)
	}
	pub, err := kp.Private.PublicKey()
	if err != nil {
		return KeyPair{}, err
	}
	kp.Public = pub
	return kp, nil
}

// PublicKey derives the public key that belongs to k.
func (k PrivateKey) PublicKey() (PublicKey, error) {
	var pub PublicKey
	if k.IsZero() {
		return pub, errors.New("uxp: private key is all zero")
	}
	p, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		return pub, fmt.Errorf("uxp: derive public key: %w", err)
	}
	copy(pub[:], p)
	return pub, nil
}

// IsZero reports whether k is the zero key (that is, unset).
func (k PrivateKey) IsZero() bool { return isZero(k[:]) }

// IsZero reports whether k is the zero key (that is, unset).
func (k PublicKey) IsZero() bool { return isZero(k[:]) }

// checkScalar is an arbitrary fixed X25519 scalar for usable: any scalar
// whose product with a low-order point is the identity would do, and after
// clamping every scalar is a multiple of the cofactor.
var checkScalar = [KeySize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// usable reports why k cannot be a peer's static key: zero, or a
// low-order point, for which every Diffie-Hellman gives the all-zero
// secret that X25519 (and so the handshake) rejects.
func (k PublicKey) usable() error {
	if k.IsZero() {
		return errors.New("all zero")
	}
	if _, err := curve25519.X25519(checkScalar[:], k[:]); err != nil {
		return errors.New("a low-order point: no Diffie-Hellman with it is possible")
	}
	return nil
}

// String returns the key in standard base64.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// MarshalText implements encoding.TextMarshaler.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// String returns the key in standard base64. It is the secret itself: never
// log it.
func (k PrivateKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// ParsePublicKey parses a base64 X25519 public key, as printed by
// PublicKey.String and `uxp keygen`. It rejects the wrong length and the
// all-zero key.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if err := parseKey(s, k[:]); err != nil {
		return k, fmt.Errorf("uxp: parse public key: %w", err)
	}
	return k, nil
}

// ParsePrivateKey parses a base64 X25519 private key, as printed by
// `uxp keygen`.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	if err := parseKey(s, k[:]); err != nil {
		return k, fmt.Errorf("uxp: parse private key: %w", err)
	}
	return k, nil
}

// ReadPrivateKeyFile reads a private key from a file holding its base64
// form, as `uxp keygen -private-out` writes it; surrounding whitespace (a
// trailing newline) is ignored. Errors name the file.
func ReadPrivateKeyFile(path string) (PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("uxp: read private key: %w", err)
	}
	k, err := ParsePrivateKey(strings.TrimSpace(string(b)))
	if err != nil {
		return PrivateKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func parseKey(s string, dst []byte) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not base64: %w", err)
	}
	if len(b) != KeySize {
		return fmt.Errorf("want %d bytes, got %d", KeySize, len(b))
	}
	if isZero(b) {
		return errors.New("key is all zero")
	}
	copy(dst, b)
	return nil
}

// isZero reports, in constant time for key-sized input, whether b is all
// zero bytes.
func isZero(b []byte) bool {
	var zero [KeySize]byte
	if len(b) != KeySize {
		var acc byte
		for _, c := range b {
			acc |= c
		}
		return acc == 0
	}
	return subtle.ConstantTimeCompare(b, zero[:]) == 1
}
