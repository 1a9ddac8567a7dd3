package crypto

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Specification constants.
const (
	// KeySize is the size in bytes of a session key.
	KeySize = 32

	// TagSize is the size in bytes of the tag (Poly1305 or GHASH) that every suite
	// appends to the ciphertext. It is also every suite's [AEAD.Overhead].
	TagSize = 16
)

// AEAD seals and opens the packets of one direction of a session.
//
// counter is the packet number and is the whole nonce. Each (key, counter)
// pair must be used to seal at most once; callers guarantee that by taking
// counters from a per-direction sequence and rekeying before it wraps.
//
// Seal appends ciphertext||tag to dst and returns the updated slice. To
// encrypt in place, pass plaintext[:0] as dst; dst and plaintext must
// otherwise not overlap (an inexact overlap is a programming error and
// panics, as with crypto/cipher.AEAD). ad is the associated data (the packet
// header), which is authenticated but not encrypted.
//
// Open authenticates ciphertext||tag and ad, then appends the plaintext to
// dst and returns the updated slice. ciphertext[:0] may be used as dst to
// decrypt in place. On any failure Open returns nil and [ErrOpen], never
// panics whatever the input lengths, and leaves dst untouched.
//
// Overhead returns [TagSize].
//
// The AEADs returned by [NewAEAD] hold no per-call state and are safe for
// concurrent use; see the package documentation, section Concurrency.
type AEAD interface {
	Seal(dst []byte, counter uint64, plaintext, ad []byte) []byte
	Open(dst []byte, counter uint64, ciphertext, ad []byte) ([]byte, error)
	Overhead() int
}

// NewAEAD returns the AEAD for suite s keyed with key. The key is copied, so
// the caller may [Zero] its own copy afterwards. An unknown suite is an error
// that names the value.
func NewAEAD(s Suite, key *[KeySize]byte) (AEAD, error) {
	switch s {
	case ChaCha20Poly1305:
		return newChaCha(key)
	case Salsa20Poly1305:
		return newSalsa(key), nil
	case AES256GCM:
		return newAESGCM(key)
	default:
		return nil, fmt.Errorf("%w: %v", errUnknownSuite, s)
	}
}

// Zero overwrites b with zeros. Use it on keys and other secret material once
// they are no longer needed.
//
// Go gives no hard guarantee that secrets leave no copies (the garbage
// collector may have moved or copied the memory); Zero only makes sure this
// slice is wiped. runtime.KeepAlive keeps the store from being treated as
// dead even if b is not read again.
func Zero(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// sliceForAppend extends in by n bytes, reallocating only when its capacity
// is too small, and returns the whole slice and the n new bytes. It is the
// helper from crypto/cipher's AEAD implementations.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// inexactOverlap reports whether x and y share memory at any
// non-corresponding index. It is a copy of crypto/internal/alias, which
// cannot be imported. The Salsa20 assembly requires its input and output to
// overlap entirely or not at all, so anything else must be refused.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}

// anyOverlap reports whether x and y share memory at any index.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}
