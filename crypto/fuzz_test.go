package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary keys, counters, ciphertexts and headers to Open
// for every suite. Open must never panic; anything it accepts must re-seal to
// the same bytes; and sealing the input as plaintext must round trip, also in
// place. Failures do not return early, so the later checks still run.
func FuzzOpen(f *testing.F) {
	for i, s := range suites {
		a := newTestAEAD(f, s, testKey(1))
		for _, n := range []int{0, 1, 16, 17, 100} {
			// Valid packets, so the fuzzer starts from inputs that pass.
			f.Add(uint8(i), testKey(1)[:], uint64(n), a.Seal(nil, uint64(n), testBytes(n, 1), testHeader), testHeader)
		}
	}
	f.Add(uint8(1), []byte{}, uint64(0), []byte{}, []byte{})
	f.Add(uint8(2), []byte{1}, ^uint64(0), make([]byte, TagSize-1), []byte{})

	// suite is an index into suites.
	f.Fuzz(func(t *testing.T, suite uint8, keyBytes []byte, counter uint64, ct, ad []byte) {
		s := suites[int(suite)%len(suites)]
		var key [KeySize]byte
		copy(key[:], keyBytes)
		a, err := NewAEAD(s, &key)
		if err != nil {
			t.Fatal(err)
		}

		pt, err := a.Open(nil, counter, ct, ad)
		switch {
		case err == nil:
			if resealed := a.Seal(nil, counter, pt, ad); !bytes.Equal(resealed, ct) {
				t.Errorf("%v: accepted packet does not re-seal to itself", s)
			}
		case !errors.Is(err, ErrOpen):
			t.Errorf("%v: Open error %v is not ErrOpen", s, err)
		case pt != nil:
			t.Errorf("%v: failed Open returned %d bytes", s, len(pt))
		}

		// Round trip with ct as the plaintext, copying first since Seal in
		// place overwrites its input.
		buf := make([]byte, len(ct), len(ct)+TagSize)
		copy(buf, ct)
		sealed := a.Seal(buf[:0], counter, buf, ad)
		if len(sealed) != len(ct)+TagSize {
			t.Errorf("%v: sealed %d bytes to %d", s, len(ct), len(sealed))
		}
		opened, err := a.Open(sealed[:0], counter, sealed, ad)
		if err != nil || !bytes.Equal(opened, ct) {
			t.Errorf("%v: round trip failed: %v", s, err)
		}
		if len(ct) > 0 {
			sealed = a.Seal(nil, counter, ct, ad)
			sealed[len(sealed)-1] ^= 0x80
			if _, err := a.Open(nil, counter, sealed, ad); !errors.Is(err, ErrOpen) {
				t.Errorf("%v: tag bit flip accepted", s)
			}
		}
	})
}
