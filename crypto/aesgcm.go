package crypto

import (
	"crypto/aes"
	"crypto/cipher"

	"golang.org/x/sys/cpu"
)

// maxGCMCiphertext is the longest ciphertext the standard library's AES-GCM
// accepts with a 96-bit nonce (2^32-2 blocks plus the tag, about 64 GiB); it
// panics on anything longer. Open checks it first because peer input must
// never panic.
const maxGCMCiphertext = (1<<32-2)*aes.BlockSize + TagSize

// aesGCMAEAD is the AES256GCM suite. It holds no mutable state and is safe
// for concurrent use.
type aesGCMAEAD struct {
	aead cipher.AEAD
}

func newAESGCM(key *[KeySize]byte) (*aesGCMAEAD, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		// Unreachable: a 32-byte key selects AES-256.
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		// Unreachable: the standard nonce and tag sizes are always accepted.
		return nil, err
	}
	return &aesGCMAEAD{aead: aead}, nil
}

// Seal uses the same 96-bit nonce layout as ChaCha20Poly1305 (four zero
// bytes, then the little-endian counter) and the same nonce pool; see
// noncePool for why the nonce is not a local array.
func (c *aesGCMAEAD) Seal(dst []byte, counter uint64, plaintext, ad []byte) []byte {
	nonce := noncePool.Get().(*chachaNonce)
	nonce.set(counter)
	out := c.aead.Seal(dst, nonce[:], plaintext, ad)
	noncePool.Put(nonce)
	return out
}

func (c *aesGCMAEAD) Open(dst []byte, counter uint64, ciphertext, ad []byte) ([]byte, error) {
	if len(ciphertext) < TagSize || uint64(len(ciphertext)) > maxGCMCiphertext {
		return nil, ErrOpen
	}
	nonce := noncePool.Get().(*chachaNonce)
	nonce.set(counter)
	out, err := c.aead.Open(dst, nonce[:], ciphertext, ad)
	noncePool.Put(nonce)
	if err != nil {
		// One sentinel for every suite, so a forgery reveals nothing and
		// callers need not know which suite is in use.
		return nil, ErrOpen
	}
	return out, nil
}

func (c *aesGCMAEAD) Overhead() int { return TagSize }

// HasAESHardware reports whether this CPU has instructions that make
// AES-GCM both fast and constant-time: AES-NI with PCLMULQDQ on x86, the AES
// and PMULL extensions on arm64, or the AES and GCM facilities (KMA) on
// s390x. It is the input to suite negotiation: AES256GCM should be chosen
// only when both ends report true, as TLS 1.3 stacks do, and
// ChaCha20Poly1305 otherwise (software AES is slower and may leak timing).
//
// ppc64le (POWER8+) also has AES-GCM assembly in the standard library, but
// x/sys/cpu exposes no feature bit for it, so it reports false there.
func HasAESHardware() bool {
	return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ ||
		cpu.ARM64.HasAES && cpu.ARM64.HasPMULL ||
		cpu.S390X.HasAES && cpu.S390X.HasAESGCM
}
