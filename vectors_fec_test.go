package uxp

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/fec"
)

// An independent GF(2^8) and Reed-Solomon encoder, written from
// docs/protocol.md section 9.1 only (no log tables, no klauspost
// code): the FEC vectors' parity must equal what it computes.

// gfRefMul multiplies in GF(2^8) modulo x^8+x^4+x^3+x^2+1 (0x11D), bit by
// bit.
func gfRefMul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1D // the low byte of 0x11D
		}
		b >>= 1
	}
	return p
}

// gfRefPow is a^n with a^0 = 1 (also for a = 0).
func gfRefPow(a byte, n int) byte {
	r := byte(1)
	for range n {
		r = gfRefMul(r, a)
	}
	return r
}

// gfRefInv is a^254 = a^-1, for a != 0.
func gfRefInv(a byte) byte { return gfRefPow(a, 254) }

// rsRefMatrix is the (k+p)×k encoding matrix of section 9.1: the
// Vandermonde matrix V[r][c] = r^c times the inverse of its top k×k
// square.
func rsRefMatrix(k, p int) [][]byte {
	n := k + p
	v := make([][]byte, n)
	for r := range v {
		v[r] = make([]byte, k)
		for c := range k {
			v[r][c] = gfRefPow(byte(r), c)
		}
	}
	// Invert the top square by Gauss-Jordan elimination.
	top := make([][]byte, k)
	inv := make([][]byte, k)
	for i := range k {
		top[i] = bytes.Clone(v[i])
		inv[i] = make([]byte, k)
		inv[i][i] = 1
	}
	for col := range k {
		piv := col
		for top[piv][col] == 0 {
			piv++ // a Vandermonde matrix of distinct points is invertible
		}
		top[col], top[piv] = top[piv], top[col]
		inv[col], inv[piv] = inv[piv], inv[col]
		s := gfRefInv(top[col][col])
		for j := range k {
			top[col][j] = gfRefMul(top[col][j], s)
			inv[col][j] = gfRefMul(inv[col][j], s)
		}
		for r := range k {
			if f := top[r][col]; r != col && f != 0 {
				for j := range k {
					top[r][j] ^= gfRefMul(f, top[col][j])
					inv[r][j] ^= gfRefMul(f, inv[col][j])
				}
			}
		}
	}
	m := make([][]byte, n)
	for r := range m {
		m[r] = make([]byte, k)
		for c := range k {
			var s byte
			for j := range k {
				s ^= gfRefMul(v[r][j], inv[j][c])
			}
			m[r][c] = s
		}
	}
	return m
}

// rsRefParity computes parity shard j's region from the data regions (all
// of one length).
func rsRefParity(m [][]byte, k, j int, regions [][]byte) []byte {
	out := make([]byte, len(regions[0]))
	for i := range k {
		c := m[k+j][i]
		for b, x := range regions[i] {
			out[b] ^= gfRefMul(c, x)
		}
	}
	return out
}

// TestRSRefMatrixSystematic: the reference matrix's top is the identity,
// and a few known entries hold (a check on the reference itself).
func TestRSRefMatrixSystematic(t *testing.T) {
	m := rsRefMatrix(4, 2)
	for r := range 4 {
		for c := range 4 {
			want := byte(0)
			if r == c {
				want = 1
			}
			require.Equal(t, want, m[r][c])
		}
	}
	require.Equal(t, byte(0x8e), gfRefInv(2)) // 2 * 0x8e = 0x11c ^ 0x11d = 1
	require.Equal(t, byte(0x1d), gfRefMul(0x80, 2))
}

func genFEC(t testing.TB) vectorFile {
	rec := &vectorRecorder{}
	const k, maxPacket = 4, 64
	enc, err := fec.NewEncoder(k, 2, maxPacket)
	require.NoError(t, err)
	enc.MaxGroupDelay = -1
	var shards [][]byte
	emit := func(s []byte) { shards = append(shards, bytes.Clone(s)) }
	packet := func(n, seed int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(seed*31 + i*7)
		}
		return p
	}
	type group struct {
		parity  int
		packets []int // lengths
		flush   bool  // close the group early
	}
	groups := []group{
		{parity: 2, packets: []int{5, 17, 1, 12}},
		{parity: 1, packets: []int{3, 3, 9, 20}},
		{parity: 3, packets: []int{8, 2}, flush: true},
	}
	rec.uint("data shards per group", k)
	for gi, g := range groups {
		require.NoError(t, enc.SetParity(g.parity))
		shards = nil
		var pkts [][]byte
		for i, n := range g.packets {
			p := packet(n, 10*gi+i)
			pkts = append(pkts, p)
			require.NoError(t, enc.Encode(p, vecTime, emit))
		}
		if g.flush {
			enc.Flush(vecTime, emit)
		}
		dataN := len(g.packets)
		require.Len(t, shards, dataN+g.parity)
		prefix := "group " + strconv.Itoa(gi) + ": "
		rec.uint(prefix+"data shards", uint64(dataN))
		rec.uint(prefix+"parity shards", uint64(g.parity))

		// Check every shard against section 9 and the parity against the
		// reference encoder.
		size := 0
		for _, p := range pkts {
			size = max(size, 2+len(p))
		}
		regions := make([][]byte, dataN)
		for i, s := range shards[:dataN] {
			require.Equal(t, uint32(gi), binary.LittleEndian.Uint32(s[0:4]))
			// A data shard leaves before the group is closed, so it
			// carries the configured count; only the parity of a group
			// closed early says how many data shards it covers.
			require.Equal(t, []byte{byte(i), 0xF1, k, byte(g.parity)}, s[4:8])
			require.Equal(t, uint16(len(pkts[i])), binary.LittleEndian.Uint16(s[8:10]))
			require.Equal(t, pkts[i], s[10:])
			regions[i] = make([]byte, size)
			copy(regions[i], s[8:])
			rec.hex(prefix+"packet "+strconv.Itoa(i), pkts[i])
			rec.hex(prefix+"data shard "+strconv.Itoa(i), s)
		}
		m := rsRefMatrix(dataN, g.parity)
		for j := range g.parity {
			rec.hex(prefix+"matrix row "+strconv.Itoa(dataN+j), m[dataN+j])
		}
		for j, s := range shards[dataN:] {
			require.Equal(t, uint32(gi), binary.LittleEndian.Uint32(s[0:4]))
			require.Equal(t, []byte{byte(dataN + j), 0xF2, byte(dataN), byte(g.parity)}, s[4:8])
			require.Equal(t, uint16(size), binary.LittleEndian.Uint16(s[8:10]))
			require.Equal(t, rsRefParity(m, dataN, j, regions), s[10:], "parity %d of group %d", j, gi)
			rec.hex(prefix+"parity shard "+strconv.Itoa(dataN+j), s)
		}
	}
	return vectorFile{
		Name:        "fec",
		Description: "Three FEC groups from one encoder with 4 data shards per group: RS(4,2), RS(4,1), and a group closed after 2 packets with 3 parity shards (its shards say data 2). Each group lists its packets, its shards as sent (before sealing as frame type 5), and the encoding matrix rows of its parity shards. docs/protocol.md section 9.",
		Values:      rec.values,
	}
}
