package crypto

import (
	"crypto/subtle"
	"encoding/binary"

	//lint:ignore SA1019 deprecated only as advice to use a full AEAD instead; this file builds one (the construction is in doc.go and docs/protocol.md).
	"golang.org/x/crypto/poly1305"
	//lint:ignore SA1019 deprecated as a low-level block function; we need its counter-addressed keystream (block 0 for the Poly1305 key, block 1 on for the payload), which the salsa20 package's XORKeyStream does not expose.
	"golang.org/x/crypto/salsa20/salsa"
)

// salsaAEAD is the Salsa20Poly1305 suite; the construction is documented in
// doc.go. It holds only the key and is safe for concurrent use.
type salsaAEAD struct {
	key [KeySize]byte
}

func newSalsa(key *[KeySize]byte) *salsaAEAD {
	a := &salsaAEAD{}
	a.key = *key
	return a
}

// salsaBlock returns the 16-byte Salsa20 input for the packet counter and
// the keystream block number:
//
//	|-- counter (8, LE) --|-- block (8, LE) --|
func salsaBlock(counter, block uint64) (b [16]byte) {
	binary.LittleEndian.PutUint64(b[:8], counter)
	binary.LittleEndian.PutUint64(b[8:], block)
	return b
}

// polyKey fills key with the Poly1305 one-time key for counter: the first
// 32 bytes of keystream block 0. The payload keystream starts at block 1, so
// these bytes are never also used to encrypt.
func (a *salsaAEAD) polyKey(key *[32]byte, counter uint64) {
	block := salsaBlock(counter, 0)
	clear(key[:])
	salsa.XORKeyStream(key[:], key[:], &block, &a.key)
}

// xorPayload encrypts or decrypts in into out with the keystream from
// block 1 on.
func (a *salsaAEAD) xorPayload(out, in []byte, counter uint64) {
	block := salsaBlock(counter, 1)
	salsa.XORKeyStream(out, in, &block, &a.key)
}

// tag computes the Poly1305 tag over the RFC 8439 AEAD layout
// ad || pad16 || ct || pad16 || le64(len(ad)) || le64(len(ct)).
//
// poly1305.New and the MAC it returns are inlined here and do not escape,
// so the compiler keeps the MAC state on the stack (0 allocs/op; see
// BenchmarkSeal).
func tag(out *[TagSize]byte, key *[32]byte, ad, ct []byte) {
	var pad [16]byte
	m := poly1305.New(key)
	m.Write(ad)
	if r := len(ad) % 16; r != 0 {
		m.Write(pad[:16-r])
	}
	m.Write(ct)
	if r := len(ct) % 16; r != 0 {
		m.Write(pad[:16-r])
	}
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[:8], uint64(len(ad)))
	binary.LittleEndian.PutUint64(lens[8:], uint64(len(ct)))
	m.Write(lens[:])
	m.Sum(out[:0])
}

func (a *salsaAEAD) Seal(dst []byte, counter uint64, plaintext, ad []byte) []byte {
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	if inexactOverlap(out, plaintext) {
		panic("uxp/crypto: invalid buffer overlap")
	}
	ct := out[:len(plaintext)]

	var key [32]byte
	a.polyKey(&key, counter)
	a.xorPayload(ct, plaintext, counter)
	var t [TagSize]byte
	tag(&t, &key, ad, ct)
	Zero(key[:])
	copy(out[len(plaintext):], t[:])
	return ret
}

func (a *salsaAEAD) Open(dst []byte, counter uint64, ciphertext, ad []byte) ([]byte, error) {
	if len(ciphertext) < TagSize {
		return nil, ErrOpen
	}
	ct, got := ciphertext[:len(ciphertext)-TagSize], ciphertext[len(ciphertext)-TagSize:]

	var key [32]byte
	a.polyKey(&key, counter)
	var want [TagSize]byte
	tag(&want, &key, ad, ct)
	Zero(key[:])
	if subtle.ConstantTimeCompare(want[:], got) != 1 {
		// Nothing has been written to dst yet, so there is nothing to wipe.
		return nil, ErrOpen
	}

	ret, out := sliceForAppend(dst, len(ct))
	if inexactOverlap(out, ct) {
		panic("uxp/crypto: invalid buffer overlap")
	}
	a.xorPayload(out, ct, counter)
	return ret, nil
}

func (a *salsaAEAD) Overhead() int { return TagSize }
