package handshake

import (
	"crypto/ecdh"
	"crypto/subtle"
	"io"
	"sync/atomic"

	"github.com/flynn/noise"
)

// The Noise cipher suite: Noise_*_25519_ChaChaPoly_BLAKE2s
// (docs/protocol.md section 4.1).
var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// X25519Suite is the Noise cipher suite with a Diffie-Hellman that costs
// one X25519 ladder per operation. noise.DH25519 goes through
// curve25519.X25519, which builds a crypto/ecdh private key, and so derives
// its public key (a second ladder), on every call: six ladders for the
// server's three operations instead of three. This one keeps the
// crypto/ecdh keys it has: a static key prepared once (StaticKey) and the
// ephemeral key it generated. The results, the checks (a low-order peer key
// fails) and the protocol name are those of noise.DH25519. One suite
// serves one handshake.
type X25519Suite struct {
	noise.CipherSuite
	static *ecdh.PrivateKey // nil: none prepared
	eph    *ecdh.PrivateKey // the key GenerateKeypair made, nil before
	ops    *atomic.Uint64   // counts X25519 ladders; nil: not counted
}

// NewX25519Suite returns the suite of one handshake. static is the
// server's prepared key (nil on a client); its Ops, if any, counts the
// ladders.
func NewX25519Suite(static *StaticKey) *X25519Suite {
	s := &X25519Suite{CipherSuite: noiseSuite}
	if static != nil {
		s.static, s.ops = static.key, static.Ops
	}
	return s
}

// CountX25519 records one X25519 ladder in ops (nil: not counted): the
// unit of handshake work that the DoS tests bound (a BLAKE2s or an AEAD is
// two orders of magnitude cheaper).
func CountX25519(ops *atomic.Uint64) {
	if ops != nil {
		ops.Add(1)
	}
}

// GenerateKeypair reads the private key from rng, as noise.DH25519 does.
func (s *X25519Suite) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	priv := make([]byte, 32)
	if _, err := io.ReadFull(rng, priv); err != nil {
		return noise.DHKey{}, err
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return noise.DHKey{}, err
	}
	CountX25519(s.ops) // the public key
	s.eph = k
	return noise.DHKey{Private: priv, Public: k.PublicKey().Bytes()}, nil
}

// DH returns X25519(priv, pub), an error for a low-order pub.
func (s *X25519Suite) DH(priv, pub []byte) ([]byte, error) {
	curve := ecdh.X25519()
	k := s.held(priv)
	if k == nil {
		var err error
		if k, err = curve.NewPrivateKey(priv); err != nil {
			return nil, err
		}
	}
	p, err := curve.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	CountX25519(s.ops)
	return k.ECDH(p)
}

// held returns the prepared key whose private half is priv, or nil.
func (s *X25519Suite) held(priv []byte) *ecdh.PrivateKey {
	if s.eph != nil && subtle.ConstantTimeCompare(s.eph.Bytes(), priv) == 1 {
		return s.eph
	}
	if s.static != nil && subtle.ConstantTimeCompare(s.static.Bytes(), priv) == 1 {
		return s.static
	}
	return nil
}

// StaticKey is the server's static key pair, in the form flynn/noise takes
// and as a crypto/ecdh key prepared once for every handshake's es.
type StaticKey struct {
	DH  noise.DHKey
	key *ecdh.PrivateKey
	// Ops is where the handshakes count their X25519; nil: nowhere. Set
	// once, before the first handshake.
	Ops *atomic.Uint64
}

// NewStaticKey prepares the server's static private key.
func NewStaticKey(priv [32]byte) (*StaticKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, err
	}
	return &StaticKey{
		DH:  noise.DHKey{Private: append([]byte(nil), priv[:]...), Public: k.PublicKey().Bytes()},
		key: k,
	}, nil
}
