package fec

import (
	"fmt"
	"math/bits"
)

// The decoder's memory: limits on what a shard may claim, stored regions
// sized to what arrived, and a byte budget.
//
// A decoder's peer chooses every count and length in its shards. Without
// limits, a peer that negotiated RS(10,3) could claim up to 64 data and 32
// parity shards per group and cycle through (data, parity) pairs, so that
// every recovery misses the codec cache and builds a Reed-Solomon codec
// (tens of microseconds); and it could make each 11-byte shard pin a
// full-size region buffer. Limits bound the first to the pairs the session
// negotiated and the codec builds to a rate; size classes and MaxBytes bound
// the second.

/* Implementation constants */
const (
	// minBufClass is the smallest region buffer: a region of up to 16
	// bytes (a 14-byte packet) takes 16, so tiny shards pin little more
	// than they carry.
	minBufClass = 16

	// bufClasses is the number of size classes: 16, 32, ... doubling, and
	// the last, lengthSize+maxPacketSize, for everything above
	// 16<<(bufClasses-2) = 32 KiB.
	bufClasses = 13

	// codecCostBase and codecCostDiv make codecCost: a build of
	// RS(data, parity) costs about 16 + data²·(data+parity)/16 times what
	// decoding one shard does (reedsolomon.New inverts a matrix, and the
	// matrix is read back with data encodings). Measured: RS(1,1) 1.2 µs,
	// RS(10,3) 7 µs, RS(20,4) 40 µs, RS(64,32) 1.5 ms, against about
	// 120 ns per shard of RS(10,3) with a recovery per group
	// (BenchmarkFECChurn).
	codecCostBase = 16
	codecCostDiv  = 16
)

// Limits bounds what a Decoder accepts from its peer and how much memory it
// holds. The zero value of a field means no limit beyond the package's.
type Limits struct {
	// MaxData is the largest data-shard count a shard may claim
	// (1..MaxDataShards). A session sets it to the negotiated data count:
	// data shards carry it, parity shards of flushed groups less. Zero
	// means MaxDataShards.
	MaxData int
	// MaxParity is the largest parity-shard count a shard may claim
	// (0..MaxParityShards): the negotiated maximum parity. Zero with
	// MaxData set means no parity; zero with MaxData zero means
	// MaxParityShards.
	MaxParity int
	// MaxBytes bounds the bytes of region buffers the decoder holds,
	// stored, pooled and its recovery scratch (Held): a shard that would exceed it first frees the pool,
	// then drops the oldest other groups (counted in Expired), and is
	// dropped itself if that is not enough (counted in OverBudget). The
	// missing regions a recovery rebuilds may exceed it for the duration
	// of the Decode call. Zero means no limit; it must otherwise be at
	// least MaxParity+2 full regions (lengthSize+maxPacketSize bytes each):
	// the recovery scratch, one region per parity shard, counts too.
	MaxBytes int
}

// SetLimits applies l to the shards decoded from now on. Groups already
// held are kept. Errors wrap ErrInvalidArgument and name the field.
func (d *Decoder) SetLimits(l Limits) error {
	full := lengthSize + d.maxPacketSize
	switch {
	case l.MaxData < 0 || l.MaxData > MaxDataShards:
		return fmt.Errorf("%w: Limits.MaxData %d not in 0..%d", ErrInvalidArgument, l.MaxData, MaxDataShards)
	case l.MaxParity < 0 || l.MaxParity > MaxParityShards:
		return fmt.Errorf("%w: Limits.MaxParity %d not in 0..%d", ErrInvalidArgument, l.MaxParity, MaxParityShards)
	}
	if l.MaxData == 0 {
		l.MaxData = MaxDataShards
		if l.MaxParity == 0 {
			l.MaxParity = MaxParityShards
		}
	}
	// The recovery scratch (one region per parity shard) counts against
	// the budget, and a group needs room for two regions besides.
	if least := (l.MaxParity + 2) * full; l.MaxBytes < 0 || l.MaxBytes > 0 && l.MaxBytes < least {
		return fmt.Errorf("%w: Limits.MaxBytes %d is negative or below MaxParity+2 regions (%d)", ErrInvalidArgument, l.MaxBytes, least)
	}
	d.limits = l
	d.creditMax = creditMax(l.MaxData, l.MaxParity)
	d.credit = d.creditMax
	// Keep in the pool what two full groups need: steady traffic then
	// reuses its buffers; anything beyond is returned to the runtime.
	d.freeKeep = 2 * (l.MaxData + l.MaxParity) * full
	if l.MaxBytes > 0 {
		d.freeKeep = min(d.freeKeep, l.MaxBytes/2)
	}
	return nil
}

// Held returns the bytes of region buffers the decoder holds: stored in
// groups, pooled, and its recovery scratch.
func (d *Decoder) Held() int { return d.held + d.scratchBytes }

// bufClass returns the smallest size class holding n bytes, and its size.
func (d *Decoder) bufClass(n int) (int, int) {
	full := lengthSize + d.maxPacketSize
	if n <= minBufClass {
		return 0, min(minBufClass, full)
	}
	i := bits.Len(uint(n-1)) - bits.Len(minBufClass-1)
	if i >= bufClasses-1 || minBufClass<<i >= full {
		return bufClasses - 1, full
	}
	return i, minBufClass << i
}

// getBuf returns an empty buffer of capacity at least n, from the pool or
// new, and counts it as held.
func (d *Decoder) getBuf(n int) []byte {
	i, size := d.bufClass(n)
	if free := d.freeBufs[i]; len(free) > 0 {
		b := free[len(free)-1]
		free[len(free)-1] = nil
		d.freeBufs[i] = free[:len(free)-1]
		d.freeBytes -= cap(b)
		return b[:0]
	}
	d.held += size
	return make([]byte, 0, size)
}

// putBuf returns b to the pool, or to the runtime when the pool already
// keeps freeKeep bytes or the decoder holds more than MaxBytes (after a
// recovery). A buffer the decoder did not make is ignored.
func (d *Decoder) putBuf(b []byte) {
	i, size := d.bufClass(cap(b))
	if cap(b) != size {
		return
	}
	if d.freeBytes+size > d.freeKeep || d.limits.MaxBytes > 0 && d.Held() > d.limits.MaxBytes {
		d.held -= size
		return
	}
	d.freeBufs[i] = append(d.freeBufs[i], b[:0])
	d.freeBytes += size
}

// trimPool returns every pooled buffer to the runtime.
func (d *Decoder) trimPool() {
	for i := range d.freeBufs {
		clear(d.freeBufs[i])
		d.freeBufs[i] = d.freeBufs[i][:0]
	}
	d.held -= d.freeBytes
	d.freeBytes = 0
}

// makeRoom makes the budget hold n more bytes, for a region of group g:
// it frees the pool, then drops the oldest other groups. It reports false
// when even that leaves too little room.
func (d *Decoder) makeRoom(n int, g *group) bool {
	limit := d.limits.MaxBytes
	if limit == 0 {
		return true
	}
	_, size := d.bufClass(n)
	if d.Held()+size <= limit {
		return true
	}
	d.trimPool()
	for d.Held()+size > limit {
		oldest := d.oldest(g)
		if oldest == nil {
			return false
		}
		d.drop(oldest)
		d.trimPool()
	}
	return true
}

// store keeps a copy of region in slot i of g, within the budget. It
// reports false, counting the shard in OverBudget, when the budget cannot
// hold it.
func (d *Decoder) store(g *group, i int, region []byte) bool {
	if !d.makeRoom(len(region), g) {
		d.stats.OverBudget++
		return false
	}
	g.shards[i] = append(d.getBuf(len(region)), region...)
	return true
}

// codecCost is what building the codec for (data, parity) costs, in
// shards: see codecCostDiv.
func codecCost(data, parity int) int { return codecCostBase + data*data*(data+parity)/codecCostDiv }

// creditMax is the codec build credit a decoder saves up: two builds of
// the largest pair the limits allow, or, when every pair they allow fits
// the codec cache at once (RS(10,3): 30 pairs), enough to build them all,
// about 1,200 shard-decodes for RS(10,3): a peer can then make the decoder
// build each at most once, and a conforming peer is never refused one.
func creditMax(maxData, maxParity int) int {
	c := 2 * codecCost(maxData, maxParity)
	if maxData*maxParity <= codecCacheSize {
		all := 0
		for data := 1; data <= maxData; data++ {
			for parity := 1; parity <= maxParity; parity++ {
				all += codecCost(data, parity)
			}
		}
		c = max(c, all)
	}
	return c
}

// codec returns the codec for (data, parity), building it if needed. A
// build spends codecCost credits, earned one per accepted shard and saved
// up to creditMax; without them the build is refused (counted in
// Throttled). So the codecs a peer makes the decoder build cost, over any
// run of shards, no more than decoding those shards plus creditMax,
// however it cycles through pairs.
func (d *Decoder) codec(data, parity int) (*codec, bool) {
	if c := d.codecs.lookup(data, parity); c != nil {
		return c, true
	}
	cost := codecCost(data, parity)
	if d.credit < cost {
		d.stats.Throttled++
		return nil, false
	}
	c, err := d.codecs.get(data, parity)
	if err != nil {
		return nil, false
	}
	d.credit -= cost
	d.buildCost += uint64(cost)
	d.stats.CodecBuilds++
	return c, true
}
