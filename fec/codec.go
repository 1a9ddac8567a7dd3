package fec

import (
	"crypto/subtle"
	"fmt"

	"github.com/klauspost/reedsolomon"
)

// rsOptions are the options every reedsolomon codec is built with.
//
// Implementation choice: in reedsolomon v1.14.2 the code-generated kernels
// allocate on every Encode (the GFNI path lets an 896-byte matrix escape, the
// AVX2 path boxes a slice into a sync.Pool). Turning them off selects the
// per-slice SSSE3 kernels, which allocate nothing; for RS(10,3) at 1400 bytes
// they cost about 2.4 µs per group against 0.85 µs (see
// BenchmarkReedSolomonEncode). One goroutine keeps the package free of
// goroutines whatever the shard size, and the inversion cache is off because
// the decoder does its own inversion (see recover) and that cache grows with
// every new loss pattern.
var rsOptions = []reedsolomon.Option{
	reedsolomon.WithMaxGoroutines(1),
	reedsolomon.WithGFNI(false),
	reedsolomon.WithAVXGFNI(false),
	reedsolomon.WithAVX2(false),
	reedsolomon.WithInversionCache(false),
}

// codec is a Reed-Solomon code for one (data, parity) pair.
type codec struct {
	data, parity int
	rs           reedsolomon.Encoder
	// matrix[j][i] is the coefficient of data shard i in parity shard j,
	// read back from rs once so that the decoder's own arithmetic matches
	// the library bit for bit.
	matrix [][]byte
	used   uint64 // codecCache clock value at last use
}

func newCodec(data, parity int) (*codec, error) {
	rs, err := reedsolomon.New(data, parity, rsOptions...)
	if err != nil {
		return nil, fmt.Errorf("fec: reedsolomon.New(%d, %d): %w", data, parity, err)
	}
	c := &codec{data: data, parity: parity, rs: rs, matrix: make([][]byte, parity)}
	// Encoding the unit vector e_i with one-byte shards yields column i.
	cells := make([]byte, data+parity)
	shards := make([][]byte, data+parity)
	for i := range shards {
		shards[i] = cells[i : i+1]
	}
	for j := range c.matrix {
		c.matrix[j] = make([]byte, data)
	}
	for i := range data {
		clear(cells)
		cells[i] = 1
		if err := rs.Encode(shards); err != nil {
			return nil, fmt.Errorf("fec: reading back RS(%d,%d) matrix: %w", data, parity, err)
		}
		for j := range parity {
			c.matrix[j][i] = cells[data+j]
		}
	}
	return c, nil
}

// codecCacheSize bounds the codecs a codecCache keeps. Implementation choice:
// an encoder needs one per parity setting and flushed group size, a decoder
// one per combination its peer uses; 64 covers every flush size of RS(10,p)
// for six parity settings. A miss costs one reedsolomon.New.
const codecCacheSize = 64

// codecCache keeps the most recently used codecs. It is bounded because a
// decoder's peer chooses the (data, parity) pairs.
type codecCache struct {
	codecs []*codec
	clock  uint64
}

// lookup returns the cached codec for (data, parity), or nil.
func (cc *codecCache) lookup(data, parity int) *codec {
	for _, c := range cc.codecs {
		if c.data == data && c.parity == parity {
			cc.clock++
			c.used = cc.clock
			return c
		}
	}
	return nil
}

func (cc *codecCache) get(data, parity int) (*codec, error) {
	cc.clock++
	for _, c := range cc.codecs {
		if c.data == data && c.parity == parity {
			c.used = cc.clock
			return c, nil
		}
	}
	c, err := newCodec(data, parity)
	if err != nil {
		return nil, err
	}
	c.used = cc.clock
	if len(cc.codecs) < codecCacheSize {
		cc.codecs = append(cc.codecs, c)
		return c, nil
	}
	lru := 0
	for i, old := range cc.codecs {
		if old.used < cc.codecs[lru].used {
			lru = i
		}
	}
	cc.codecs[lru] = c
	return c, nil
}

// GF(2^8) arithmetic with the library's field: generator 2, polynomial
// x^8+x^4+x^3+x^2+1 (0x11D). The tables are computed once in init and never
// written afterwards.
var (
	gfExp [510]byte
	gfLog [256]byte
)

func init() {
	x := 1
	for i := range 255 {
		gfExp[i] = byte(x)
		gfExp[i+255] = byte(x)
		gfLog[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11D
		}
	}
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// gfInv returns the multiplicative inverse of a, which must not be zero.
func gfInv(a byte) byte { return gfExp[255-int(gfLog[a])] }

// gfMulAdd sets dst ^= c*src over len(src) bytes; dst must be as long.
func gfMulAdd(dst, src []byte, c byte) {
	switch c {
	case 0:
		return
	case 1:
		subtle.XORBytes(dst, dst, src)
		return
	}
	var t [256]byte
	lc := int(gfLog[c])
	for x := 1; x < 256; x++ {
		t[x] = gfExp[lc+int(gfLog[x])]
	}
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] ^= t[v]
	}
}

// gfInvert inverts the n×n matrix m (row-major, modified) into inv (row-major,
// n*n bytes). It reports false if m is singular.
func gfInvert(m, inv []byte, n int) bool {
	clear(inv[:n*n])
	for i := range n {
		inv[i*n+i] = 1
	}
	for col := range n {
		pivot := -1
		for r := col; r < n; r++ {
			if m[r*n+col] != 0 {
				pivot = r
				break
			}
		}
		if pivot < 0 {
			return false
		}
		if pivot != col {
			for k := range n {
				m[pivot*n+k], m[col*n+k] = m[col*n+k], m[pivot*n+k]
				inv[pivot*n+k], inv[col*n+k] = inv[col*n+k], inv[pivot*n+k]
			}
		}
		if p := m[col*n+col]; p != 1 {
			s := gfInv(p)
			for k := range n {
				m[col*n+k] = gfMul(m[col*n+k], s)
				inv[col*n+k] = gfMul(inv[col*n+k], s)
			}
		}
		for r := range n {
			f := m[r*n+col]
			if r == col || f == 0 {
				continue
			}
			for k := range n {
				m[r*n+k] ^= gfMul(f, m[col*n+k])
				inv[r*n+k] ^= gfMul(f, inv[col*n+k])
			}
		}
	}
	return true
}
