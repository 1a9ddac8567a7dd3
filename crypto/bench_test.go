package crypto

import (
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

var benchSizes = []int{64, 1024, 1400}

// BenchmarkSeal seals in place into a buffer with room for the tag, as the
// transport does.
func BenchmarkSeal(b *testing.B) {
	for _, s := range suites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				a := newTestAEAD(b, s, testKey(1))
				buf := make([]byte, n, n+TagSize)
				var counter uint64
				b.ReportAllocs()
				b.SetBytes(int64(n))
				for b.Loop() {
					counter++
					a.Seal(buf[:0], counter, buf, testHeader)
				}
			})
		}
	}
}

// BenchmarkOpen opens a valid packet into a separate buffer, so the input
// stays valid across iterations.
func BenchmarkOpen(b *testing.B) {
	for _, s := range suites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				a := newTestAEAD(b, s, testKey(1))
				sealed := a.Seal(nil, 1, testBytes(n, 0), testHeader)
				out := make([]byte, 0, n)
				b.ReportAllocs()
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := a.Open(out, 1, sealed, testHeader); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBaselineSeal is plain x/crypto ChaCha20-Poly1305 with a fixed
// nonce, the floor for BenchmarkSeal/chacha20-poly1305.
func BenchmarkBaselineSeal(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("x-chacha20poly1305/%d", n), func(b *testing.B) {
			key := testKey(1)
			a, err := chacha20poly1305.New(key[:])
			if err != nil {
				b.Fatal(err)
			}
			nonce := make([]byte, chacha20poly1305.NonceSize)
			buf := make([]byte, n, n+TagSize)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				a.Seal(buf[:0], nonce, buf, testHeader)
			}
		})
	}
}
