package fec

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// validGroup returns the shards of one RS(4,2) group and its packets.
func validGroup(tb testing.TB) ([][]byte, [][]byte) {
	tb.Helper()
	pkts := testPackets(newRand(tb), 4)
	return encodeAll(tb, newTestEncoder(tb, 4, 2), pkts, false), pkts
}

func withHeader(shard []byte, f func(b []byte)) []byte {
	b := append([]byte(nil), shard...)
	f(b)
	return b
}

// TestGarbageShards feeds malformed shards and checks each is rejected with
// the right error, and that the same group still recovers afterwards.
func TestGarbageShards(t *testing.T) {
	shards, pkts := validGroup(t)
	data, parity := shards[0], shards[4]
	tests := []struct {
		name  string
		shard []byte
		want  error
	}{
		{"empty", nil, ErrShortShard},
		{"header only", data[:shardHeaderSize], ErrShortShard},
		{"bad type", withHeader(data, func(b []byte) { b[offType] = 0 }), ErrShardType},
		{"zero data count", withHeader(data, func(b []byte) { b[offData] = 0 }), ErrShardCount},
		{"data count too big", withHeader(data, func(b []byte) { b[offData] = MaxDataShards + 1 }), ErrShardCount},
		{"parity count too big", withHeader(parity, func(b []byte) { b[offParity] = MaxParityShards + 1 }), ErrShardCount},
		{"data index past data", withHeader(data, func(b []byte) { b[offIndex] = 4 }), ErrShardIndex},
		{"parity index in data", withHeader(parity, func(b []byte) { b[offIndex] = 3 }), ErrShardIndex},
		{"parity index past group", withHeader(parity, func(b []byte) { b[offIndex] = 6 }), ErrShardIndex},
		{"parity with zero parity count", withHeader(parity, func(b []byte) { b[offParity] = 0 }), ErrShardIndex},
		{"length too big", withHeader(data, func(b []byte) { binary.LittleEndian.PutUint16(b[offLength:], uint16(len(b))) }), ErrShardLength},
		{"length too small", withHeader(data, func(b []byte) { binary.LittleEndian.PutUint16(b[offLength:], uint16(len(b)-HeaderSize-1)) }), ErrShardLength},
		{"data over max packet", func() []byte {
			b := make([]byte, HeaderSize+testMaxPacket+1)
			putHeader(b, 0, 0, typeData, 4, 2, testMaxPacket+1)
			return b
		}(), ErrShardLength},
		{"parity over max packet", func() []byte {
			b := make([]byte, HeaderSize+lengthSize+testMaxPacket+1)
			putHeader(b, 0, 4, typeParity, 4, 2, lengthSize+testMaxPacket+1)
			return b
		}(), ErrShardLength},
		{"parity under a length field", func() []byte {
			b := make([]byte, HeaderSize+1)
			putHeader(b, 0, 4, typeParity, 4, 2, 1)
			return b
		}(), ErrShardLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(t, 8)
			var got sink
			require.ErrorIs(t, d.Decode(tt.shard, testEpoch, got.deliver), tt.want)
			require.ErrorIs(t, d.Decode(tt.shard, testEpoch, got.deliver), ErrMalformed)
			require.Empty(t, got.got)
			require.Equal(t, uint64(2), d.Stats().Malformed)
			require.Zero(t, d.Groups())

			// The real group, missing two data shards, still recovers.
			feed(t, d, [][]byte{shards[1], shards[3], shards[4], shards[5]}, testEpoch, &got)
			got.requireDelivered(t, pkts, map[int]bool{0: true, 2: true})
		})
	}
}

// TestTruncatedShards cuts every shard of a group at every length.
func TestTruncatedShards(t *testing.T) {
	shards, pkts := validGroup(t)
	d := newTestDecoder(t, 8)
	var got sink
	for _, s := range shards {
		for n := range len(s) {
			require.ErrorIs(t, d.Decode(s[:n], testEpoch, got.deliver), ErrMalformed, "length %d of %d", n, len(s))
		}
	}
	require.Empty(t, got.got)
	require.Zero(t, d.Groups())
	feed(t, d, shards[1:5], testEpoch, &got)
	got.requireDelivered(t, pkts, map[int]bool{0: true})
}

// TestRandomGarbage interleaves random bytes with a lossy stream.
func TestRandomGarbage(t *testing.T) {
	rng := newRand(t)
	shards, pkts := validGroup(t)
	d := newTestDecoder(t, 8)
	var got sink
	garbage := func() {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		// Random bytes for other groups may parse; they must not touch ours.
		if len(b) >= 4 {
			binary.LittleEndian.PutUint32(b, 1000+rng.Uint32N(10))
		}
		_ = d.Decode(b, testEpoch, func([]byte, bool) {})
	}
	for _, s := range [][]byte{shards[0], shards[2], shards[4], shards[5]} {
		for range 100 {
			garbage()
		}
		require.NoError(t, d.Decode(s, testEpoch, got.deliver))
	}
	got.requireDelivered(t, pkts, map[int]bool{1: true, 3: true})
	require.NotZero(t, d.Stats().Malformed)
}

// TestInconsistentShards sends well-formed shards that contradict their
// group: they are rejected and the group still recovers.
func TestInconsistentShards(t *testing.T) {
	shards, pkts := validGroup(t)
	tests := []struct {
		name  string
		first [][]byte // valid shards fed before the bad one
		bad   []byte
	}{
		{"data with other data count", shards[:1], withHeader(shards[1], func(b []byte) { b[offData] = 5 })},
		{"data with other parity count", shards[:1], withHeader(shards[1], func(b []byte) { b[offParity] = 3 })},
		{"parity with other parity count", shards[:1], withHeader(shards[4], func(b []byte) { b[offParity] = 3; b[offIndex] = 6 })},
		{"parity with more data", shards[:1], withHeader(shards[4], func(b []byte) { b[offData] = 5; b[offIndex] = 5 })},
		{"parity shorter than data", shards[:1], func() []byte {
			b := make([]byte, HeaderSize+lengthSize)
			putHeader(b, 0, 4, typeParity, 4, 2, lengthSize)
			return b
		}()},
		{"parity of other size", shards[4:5], func() []byte {
			b := append([]byte(nil), shards[5]...)
			b = append(b, 0)
			binary.LittleEndian.PutUint16(b[offLength:], uint16(len(b)-HeaderSize))
			return b
		}()},
		{"flushed parity below data seen", shards[3:4], withHeader(shards[4], func(b []byte) { b[offData] = 2; b[offIndex] = 2 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(t, 8)
			var got sink
			feed(t, d, tt.first, testEpoch, &got)
			require.ErrorIs(t, d.Decode(tt.bad, testEpoch, got.deliver), ErrShardMismatch)
			require.Equal(t, uint64(1), d.Stats().Malformed)
			for _, s := range shards {
				if !containsShard(tt.first, s) {
					require.NoError(t, d.Decode(s, testEpoch, got.deliver))
				}
			}
			got.requireDeliveredLoose(t, pkts, nil)
			require.Zero(t, d.Groups())
		})
	}
}

func containsShard(set [][]byte, s []byte) bool {
	for _, x := range set {
		if string(x) == string(s) {
			return true
		}
	}
	return false
}
