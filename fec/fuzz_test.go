package fec

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fuzzStream is a fixed valid stream: groups of mixed settings, each packet
// tagged with its group and index so a delivery can be checked.
type fuzzStream struct {
	shards [][]byte
	pkts   map[uint32][][]byte // by group
}

func newFuzzStream(tb testing.TB) *fuzzStream {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	e := newTestEncoder(tb, 4, 2)
	e.group = 0xFFFFFFFF - 2 // cross the wrap
	fs := &fuzzStream{pkts: make(map[uint32][][]byte)}
	emit := func(s []byte) { fs.shards = append(fs.shards, append([]byte(nil), s...)) }
	for g, parity := range []int{2, 1, 0, 3, 2, 2} {
		require.NoError(tb, e.SetParity(parity))
		n := 4
		if g == 4 {
			n = 3 // flushed early
		}
		for i := range n {
			id := e.group
			p := make([]byte, 5+rng.IntN(60))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			binary.LittleEndian.PutUint32(p, id)
			p[4] = byte(i)
			fs.pkts[id] = append(fs.pkts[id], p)
			require.NoError(tb, e.Encode(p, testEpoch, emit))
		}
		e.Flush(testEpoch, emit)
	}
	return fs
}

// FuzzDecoder drives a Decoder with a mix of valid shards (in any order,
// repeated or missing) and arbitrary bytes. It checks that nothing panics,
// that the decoder stays within its bounds, and that every packet delivered
// while decoding a valid shard of a group no garbage claimed is an original
// of that group, delivered once.
//
// Input: a sequence of ops. Byte b < 0xC0 feeds valid shard b % n. 0xFF
// advances the clock by half the maximum age and calls Expire. Any other b
// feeds the next (b & 0x3F) input bytes as a shard.
// countHeld recounts the region buffers d holds, in its groups and pool.
func countHeld(d *Decoder) int {
	n := 0
	for _, g := range d.active {
		for _, b := range g.shards {
			n += cap(b)
		}
	}
	for _, free := range d.freeBufs {
		for _, b := range free {
			n += cap(b)
		}
	}
	return n
}

func FuzzDecoder(f *testing.F) {
	fs := newFuzzStream(f)
	n := len(fs.shards)
	inOrder := make([]byte, n)
	for i := range inOrder {
		inOrder[i] = byte(i)
	}
	f.Add(inOrder)
	lossy := []byte{}
	for i := range n {
		if i%3 != 1 {
			lossy = append(lossy, byte(i))
		}
	}
	f.Add(lossy)
	reversed := make([]byte, n)
	for i := range reversed {
		reversed[i] = byte(n - 1 - i)
	}
	f.Add(reversed)
	f.Add(append([]byte{0xFF, 0xFF, 0xFF}, inOrder...))
	// A garbage shard copied from a valid one with a changed byte.
	g := append([]byte(nil), fs.shards[0][:min(len(fs.shards[0]), 0x3F)]...)
	g[offIndex] ^= 1
	f.Add(append(append([]byte{0xC0 | byte(len(g))}, g...), inOrder...))

	const maxGroups = 4
	const maxAge = time.Second
	f.Fuzz(func(t *testing.T, ops []byte) {
		d, err := NewDecoder(maxGroups, maxAge, 256)
		require.NoError(t, err)
		// Half the inputs run under a budget of six regions.
		budget := 0
		if len(ops)%2 == 1 {
			budget = 6 * (lengthSize + 256)
			require.NoError(t, d.SetLimits(Limits{MaxData: 4, MaxParity: 3, MaxBytes: budget}))
		}
		now := testEpoch
		touched := make(map[uint32]bool)
		delivered := make(map[string]bool)
		var current uint32
		var checking bool
		deliver := func(pkt []byte, _ bool) {
			if !checking {
				return
			}
			require.True(t, containsShard(fs.pkts[current], pkt), "group %d delivered a packet it never had", current)
			require.False(t, delivered[string(pkt)], "delivered twice")
			delivered[string(pkt)] = true
		}
		for len(ops) > 0 {
			b := ops[0]
			ops = ops[1:]
			switch {
			case b < 0xC0:
				s := fs.shards[int(b)%n]
				current = rawHeader(s[:HeaderSize]).Group()
				checking = !touched[current]
				// Garbage claiming this group may make its valid shards
				// contradict it; otherwise they must be accepted. Either
				// way, keep going.
				if err := d.Decode(s, now, deliver); checking {
					require.NoError(t, err)
				}
			case b == 0xFF:
				now = now.Add(maxAge / 2)
				d.Expire(now)
			default:
				l := min(int(b&0x3F), len(ops))
				s := ops[:l]
				ops = ops[l:]
				if len(s) >= 4 {
					touched[binary.LittleEndian.Uint32(s)] = true
				}
				checking = false
				_ = d.Decode(s, now, deliver)
			}
			require.LessOrEqual(t, d.Groups(), maxGroups)
			require.LessOrEqual(t, len(d.freeGroups)+d.Groups(), maxGroups)
			require.LessOrEqual(t, d.freeBytes, d.freeKeep)
			require.Equal(t, countHeld(d), d.held, "held is what groups and the pool hold")
			if budget > 0 {
				require.LessOrEqual(t, d.Held(), budget)
			}
			require.LessOrEqual(t, len(d.codecs.codecs), codecCacheSize)
		}
	})
}
