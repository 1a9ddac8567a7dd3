package fec

import (
	"encoding/binary"
	"testing"

	"github.com/klauspost/reedsolomon"
	"github.com/stretchr/testify/require"
)

const benchPacket = 1400

// BenchmarkEncode measures Encode per packet for RS(10,3); every tenth call
// also computes and emits the group's parity.
func BenchmarkEncode(b *testing.B) {
	e := newTestEncoder(b, 10, 3)
	pkt := make([]byte, benchPacket)
	var sent int
	emit := func(s []byte) { sent += len(s) }
	b.ReportAllocs()
	b.SetBytes(benchPacket)
	for b.Loop() {
		if err := e.Encode(pkt, testEpoch, emit); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures Decode per group of RS(10,3) (ten 1400-byte
// packets), with lost data shards recovered from parity.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		lost []int
	}{
		{"lossless", nil},
		{"lose1", []int{3}},
		{"lose3", []int{0, 5, 9}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pkts := make([][]byte, 10)
			for i := range pkts {
				pkts[i] = make([]byte, benchPacket)
				pkts[i][0] = byte(i)
			}
			shards := encodeAll(b, newTestEncoder(b, 10, 3), pkts, false)
			var kept [][]byte
			for i, s := range shards {
				if !containsIndex(bc.lost, i) {
					kept = append(kept, s)
				}
			}
			d := newTestDecoder(b, 32)
			var n int
			deliver := func(p []byte, _ bool) { n += len(p) }
			var group uint32
			b.ReportAllocs()
			b.SetBytes(10 * benchPacket)
			for b.Loop() {
				for _, s := range kept {
					binary.LittleEndian.PutUint32(s[offGroup:], group)
					if err := d.Decode(s, testEpoch, deliver); err != nil {
						b.Fatal(err)
					}
				}
				group++
			}
			require.Equal(b, uint64(len(bc.lost))*uint64(group), d.Stats().Recovered)
		})
	}
}

func containsIndex(set []int, i int) bool {
	for _, x := range set {
		if x == i {
			return true
		}
	}
	return false
}

// BenchmarkReedSolomonEncode is the baseline: reedsolomon's Encode of one
// RS(10,3) group of 1402-byte regions, with its default options and with the
// allocation-free options this package uses.
func BenchmarkReedSolomonEncode(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []reedsolomon.Option
	}{
		{"default", []reedsolomon.Option{reedsolomon.WithMaxGoroutines(1)}},
		{"fec", rsOptions},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rs, err := reedsolomon.New(10, 3, bc.opts...)
			require.NoError(b, err)
			shards := make([][]byte, 13)
			for i := range shards {
				shards[i] = make([]byte, lengthSize+benchPacket)
				shards[i][0] = byte(i)
			}
			b.ReportAllocs()
			b.SetBytes(10 * (lengthSize + benchPacket))
			for b.Loop() {
				if err := rs.Encode(shards); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReedSolomonReconstructData is the baseline for recovery: what
// the decoder would cost through ReconstructData, which allocates.
func BenchmarkReedSolomonReconstructData(b *testing.B) {
	rs, err := reedsolomon.New(10, 3, reedsolomon.WithMaxGoroutines(1))
	require.NoError(b, err)
	shards := make([][]byte, 13)
	for i := range shards {
		shards[i] = make([]byte, lengthSize+benchPacket)
		shards[i][1] = byte(i)
	}
	require.NoError(b, rs.Encode(shards))
	lost := shards[3]
	b.ReportAllocs()
	b.SetBytes(10 * (lengthSize + benchPacket))
	for b.Loop() {
		shards[3] = lost[:0]
		if err := rs.ReconstructData(shards); err != nil {
			b.Fatal(err)
		}
	}
}

// TestZeroAllocs checks the steady state exactly rather than through the
// rounded allocs/op of the benchmarks.
func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are slow to warm up")
	}
	pkts := make([][]byte, 10)
	for i := range pkts {
		pkts[i] = make([]byte, 1+i*150)
		pkts[i][0] = byte(i)
	}
	e := newTestEncoder(t, 10, 3)
	emit := func([]byte) {}
	encodeGroup := func() {
		for _, p := range pkts {
			_ = e.Encode(p, testEpoch, emit)
		}
	}
	encodeGroup() // warm up
	require.Zero(t, testing.AllocsPerRun(50, encodeGroup), "Encode")
	flushGroup := func() {
		_ = e.Encode(pkts[9], testEpoch, emit)
		_ = e.Encode(pkts[1], testEpoch, emit)
		e.Flush(testEpoch, emit)
	}
	flushGroup()
	require.Zero(t, testing.AllocsPerRun(50, flushGroup), "Flush")

	shards := encodeAll(t, newTestEncoder(t, 10, 3), pkts, false)
	kept := append(append([][]byte{}, shards[1:5]...), shards[6:12]...) // lose 0, 5, 12
	d := newTestDecoder(t, 32)
	deliver := func([]byte, bool) {}
	var group uint32
	decodeGroup := func() {
		for _, s := range kept {
			binary.LittleEndian.PutUint32(s[offGroup:], group)
			_ = d.Decode(s, testEpoch, deliver)
		}
		group++
	}
	decodeGroup()
	require.Zero(t, testing.AllocsPerRun(50, decodeGroup), "Decode with recovery")
	require.Equal(t, 2*uint64(group), d.Stats().Recovered)
}
