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

func newAESGCM(key *[KeySize]byte) (*counterAEAD, error) {
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
	// Same nonce layout as ChaCha20Poly1305: four zero bytes, then the
	// little-endian counter (counterAEAD).
	return &counterAEAD{aead: aead, maxCiphertext: maxGCMCiphertext}, nil
}

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
