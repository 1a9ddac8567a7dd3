package fec

import (
	"crypto/subtle"
	"encoding/binary"
)

// tryRecover reconstructs and delivers g's missing data shards once g holds
// as many shards as it has data shards.
//
// It does not call reedsolomon's ReconstructData, which allocates five slices
// per call in v1.14.2. Instead, with X the m missing data indices and Q the
// first m parity shards received:
//
//  1. Encode the group with the missing data set to zero. Parity row q then
//     lacks exactly sum over x in X of M[q][x]·D[x], so received parity XOR
//     recomputed parity gives the syndrome S[q] = sum M[q][x]·D[x].
//  2. Solve the m×m system A·D[X] = S with A[r][c] = M[Q[r]][X[c]], which is
//     invertible because the code is MDS (every square submatrix of M is).
//
// Step 1 runs in reedsolomon's SIMD kernels; step 2 costs m² table-driven
// passes over a region, one for the common single loss.
func (d *Decoder) tryRecover(g *group, deliver func([]byte, bool)) error {
	if g.nParity == 0 || g.nData+g.nParity < g.dataCount {
		return nil
	}
	k, p, size := g.dataCount, g.parity, g.regionSize
	missing := g.missingData(d.missing[:0])
	m := len(missing)
	c, ok := d.codec(k, p)
	if !ok {
		// Throttled (decoder_mem.go), or unreachable: parseShard bounds k
		// and p to what reedsolomon accepts. Either way the group cannot
		// be decoded; KCP retransmits what it lacked.
		d.drop(g)
		return nil
	}

	shards := d.shards[:k+p]
	for i := range k {
		b := g.shards[i]
		if b == nil {
			// Zero input now, output buffer afterwards.
			b = d.getBuf(size)
		} else if cap(b) < size {
			// Stored at its own size: move it to a buffer the padding fits.
			nb := append(d.getBuf(size), b...)
			d.putBuf(b)
			b = nb
		}
		// Pad to the parity size; the buffer may hold an older packet.
		n := len(b)
		b = b[:size]
		clear(b[n:])
		g.shards[i] = b
		shards[i] = b
	}
	for len(d.scratch) < p {
		d.scratch = append(d.scratch, make([]byte, lengthSize+d.maxPacketSize))
		d.scratchBytes += lengthSize + d.maxPacketSize
	}
	for j := range p {
		shards[k+j] = d.scratch[j][:size]
	}
	if err := c.rs.Encode(shards); err != nil {
		d.drop(g) // unreachable: counts and sizes match the codec
		return ErrRecoveryFailed
	}

	rows := d.rows[:0]
	for j := 0; j < p && len(rows) < m; j++ {
		if g.paritySeen&(1<<j) != 0 {
			rows = append(rows, j)
			syn := d.scratch[j][:size]
			subtle.XORBytes(syn, syn, g.shards[k+j])
		}
	}
	for r, q := range rows {
		for col, x := range missing {
			d.mat[r*m+col] = c.matrix[q][x]
		}
	}
	if !gfInvert(d.mat[:m*m], d.inv[:m*m], m) {
		d.drop(g) // unreachable for the MDS matrix reedsolomon builds
		return ErrRecoveryFailed
	}
	for col, x := range missing {
		out := g.shards[x] // still zero from step 1
		for r, q := range rows {
			gfMulAdd(out, d.scratch[q][:size], d.inv[col*m+r])
		}
	}

	// Check every packet before delivering any, so a faulty peer's parity
	// cannot get half of a bad reconstruction delivered.
	for _, x := range missing {
		if n := int(binary.LittleEndian.Uint16(g.shards[x])); lengthSize+n > size {
			d.drop(g)
			return ErrRecoveryFailed
		}
	}
	for _, x := range missing {
		b := g.shards[x]
		n := int(binary.LittleEndian.Uint16(b))
		g.dataSeen |= 1 << x
		g.nData++
		d.stats.Recovered++
		deliver(b[lengthSize:lengthSize+n], true)
	}
	d.finish(g)
	return nil
}
