package fec

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testMaxPacket = 1400

var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestEncoder(tb testing.TB, data, parity int) *Encoder {
	tb.Helper()
	e, err := NewEncoder(data, parity, testMaxPacket)
	require.NoError(tb, err)
	return e
}

func newTestDecoder(tb testing.TB, maxGroups int) *Decoder {
	tb.Helper()
	d, err := NewDecoder(maxGroups, time.Second, testMaxPacket)
	require.NoError(tb, err)
	return d
}

// testPacket returns a packet of random size 1..testMaxPacket whose first
// byte is tag, so a delivered packet names the original it must equal.
func testPacket(rng *rand.Rand, tag byte) []byte {
	p := make([]byte, 1+rng.IntN(testMaxPacket))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	p[0] = tag
	return p
}

func testPackets(rng *rand.Rand, n int) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = testPacket(rng, byte(i))
	}
	return pkts
}

// encodeAll encodes pkts and returns copies of every shard emitted,
// flushing any partial group at the end.
func encodeAll(tb testing.TB, e *Encoder, pkts [][]byte, flush bool) [][]byte {
	tb.Helper()
	var shards [][]byte
	emit := func(s []byte) { shards = append(shards, append([]byte(nil), s...)) }
	for _, p := range pkts {
		require.NoError(tb, e.Encode(p, testEpoch, emit))
	}
	if flush {
		e.Flush(testEpoch, emit)
	}
	return shards
}

// delivery is one call of a Decoder's deliver callback.
type delivery struct {
	pkt       []byte
	recovered bool
}

// sink collects deliveries.
type sink struct{ got []delivery }

func (s *sink) deliver(pkt []byte, recovered bool) {
	s.got = append(s.got, delivery{append([]byte(nil), pkt...), recovered})
}

// requireDelivered checks that s holds every packet of want exactly once,
// by tag, with recovered set for exactly the tags in lost.
func (s *sink) requireDelivered(tb testing.TB, want [][]byte, lost map[int]bool) {
	tb.Helper()
	s.requireDeliveredLoose(tb, want, lost)
	for _, d := range s.got {
		require.Equal(tb, lost[int(d.pkt[0])], d.recovered, "recovered flag of packet %d", d.pkt[0])
	}
}

// requireDeliveredLoose is requireDelivered for reordered input, where a
// packet may be reconstructed before its own shard arrives: lost packets
// must be flagged recovered, others may be.
func (s *sink) requireDeliveredLoose(tb testing.TB, want [][]byte, lost map[int]bool) {
	tb.Helper()
	require.Len(tb, s.got, len(want))
	seen := make(map[int]bool)
	for _, d := range s.got {
		require.NotEmpty(tb, d.pkt)
		tag := int(d.pkt[0])
		require.Less(tb, tag, len(want))
		require.False(tb, seen[tag], "packet %d delivered twice", tag)
		seen[tag] = true
		require.Equal(tb, want[tag], d.pkt, "packet %d", tag)
		if lost[tag] {
			require.True(tb, d.recovered, "recovered flag of lost packet %d", tag)
		}
	}
}

// requireSubset checks that everything in s is an original, at most once.
func (s *sink) requireSubset(tb testing.TB, want [][]byte) {
	tb.Helper()
	seen := make(map[int]bool)
	for _, d := range s.got {
		require.NotEmpty(tb, d.pkt)
		tag := int(d.pkt[0])
		require.Less(tb, tag, len(want))
		require.False(tb, seen[tag], "packet %d delivered twice", tag)
		seen[tag] = true
		require.Equal(tb, want[tag], d.pkt)
	}
}

func feed(tb testing.TB, d *Decoder, shards [][]byte, now time.Time, s *sink) {
	tb.Helper()
	for _, sh := range shards {
		require.NoError(tb, d.Decode(sh, now, s.deliver))
	}
}

// subsets calls f with every subset of 0..n-1 of at most k elements.
func subsets(n, k int, f func(set []int)) {
	var rec func(start int, set []int)
	rec = func(start int, set []int) {
		f(set)
		if len(set) == k {
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(set, i))
		}
	}
	rec(0, nil)
}

func newRand(tb testing.TB) *rand.Rand {
	tb.Helper()
	return rand.New(rand.NewPCG(1, uint64(len(tb.Name()))))
}
