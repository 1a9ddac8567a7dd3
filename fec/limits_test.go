package fec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// hostileParity returns a parity shard of group id claiming (data, parity)
// with index data (the first parity shard) and a region of n bytes: alone it
// completes a one-data-shard group, so the decoder recovers at once.
func hostileParity(id uint32, data, parity, n int) []byte {
	b := make([]byte, HeaderSize+n)
	putHeader(b, id, data, typeParity, data, parity, n)
	return b
}

// hostileData returns a data shard of group id claiming (data, parity) at
// index with a packet of n bytes.
func hostileData(id uint32, index, data, parity, n int) []byte {
	b := make([]byte, HeaderSize+n)
	putHeader(b, id, index, typeData, data, parity, n)
	return b
}

// TestDecoderLimitsCounts: with limits set to what a session negotiated
// (RS(10,3)), shards claiming more data or parity shards are rejected as
// ErrShardCount and change nothing; shards within them decode as before.
func TestDecoderLimitsCounts(t *testing.T) {
	d := newTestDecoder(t, 8)
	require.NoError(t, d.SetLimits(Limits{MaxData: 10, MaxParity: 3}))
	for _, tt := range []struct {
		name         string
		data, parity int
		ok           bool
	}{
		{"negotiated", 10, 3, true},
		{"flushed group", 4, 3, true},
		{"adaptive lower parity", 10, 1, true},
		{"one data shard more", 11, 3, false},
		{"one parity shard more", 10, 4, false},
		{"package maximum", MaxDataShards, MaxParityShards, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := d.Stats().Malformed
			err := d.Decode(hostileData(uint32(tt.data*100+tt.parity), 0, tt.data, tt.parity, 20), testEpoch, func([]byte, bool) {})
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, before, d.Stats().Malformed)
				return
			}
			require.ErrorIs(t, err, ErrShardCount)
			require.Equal(t, before+1, d.Stats().Malformed)
		})
	}
	for _, bad := range []Limits{{MaxData: -1}, {MaxData: MaxDataShards + 1}, {MaxParity: MaxParityShards + 1}, {MaxBytes: -1}, {MaxBytes: 100}} {
		require.ErrorIs(t, d.SetLimits(bad), ErrInvalidArgument, "%+v", bad)
	}
}

// TestDecoderCodecBuildBound: a peer that cycles through (data, parity)
// pairs so that every recovery needs a codec the cache lacks. Before, the
// decoder built one Reed-Solomon codec per group (RS(10,3) costs as much as
// decoding about 80 shards, RS(64,32) about 12,000). Now, with the
// negotiated limits of RS(10,3) every pair it can still claim fits the
// cache: at most 10×3 builds in all. With no count limits (64/32, 2048
// pairs), builds are paid for with credit earned per shard (codecCost).
func TestDecoderCodecBuildBound(t *testing.T) {
	// Each group: data-1 tiny data shards and one parity shard, which
	// completes it and so needs its codec.
	cycle := func(d *Decoder, maxData, maxParity int) (shards int) {
		for id := range uint32(5000) {
			pair := int(id) % (maxData * maxParity)
			data, parity := 1+pair%maxData, 1+pair/maxData
			for i := range data - 1 {
				shards++
				_ = d.Decode(hostileData(id, i, data, parity, 1), testEpoch, func([]byte, bool) {})
			}
			shards++
			_ = d.Decode(hostileParity(id, data, parity, 40), testEpoch, func([]byte, bool) {})
		}
		return shards
	}

	d := newTestDecoder(t, 8)
	require.NoError(t, d.SetLimits(Limits{MaxData: 10, MaxParity: 3}))
	cycle(d, 12, 4) // tries 48 pairs; those past RS(10,3) are refused
	require.LessOrEqual(t, d.Stats().CodecBuilds, uint64(10*3), "negotiated RS(10,3): only its 30 pairs are built")
	require.NotZero(t, d.Stats().Malformed)

	// No count limits: 4×32 pairs, twice the cache, then the largest
	// pairs, whose codecs cost a thousand times more to build.
	for _, pairs := range [][2]int{{4, MaxParityShards}, {MaxDataShards, 4}} {
		d = newTestDecoder(t, 8)
		shards := cycle(d, pairs[0], pairs[1])
		st := d.Stats()
		bound := uint64(d.creditMax + shards)
		t.Logf("pairs up to %v: %d shards in 5000 groups: %d codecs built (one per group before), costing %d shard-decodes (bound %d), %d refused",
			pairs, shards, st.CodecBuilds, d.buildCost, bound, st.Throttled)
		require.LessOrEqual(t, d.buildCost, bound, "builds cost no more than decoding the shards, plus the saved credit")
		if pairs[0] == MaxDataShards {
			require.NotZero(t, st.Throttled, "large codecs are refused once the credit is spent")
		}
	}
}

// TestDecoderMemoryBound: tiny shards pinned a full-size region buffer each
// (11-byte shards of 64 groups × 63 data shards held 5.8 MB); now a stored
// region takes the smallest size class that holds it (16 bytes here), the
// budget MaxBytes caps what full-size shards can pin, and the pool keeps
// only freeKeep bytes once the groups are gone.
func TestDecoderMemoryBound(t *testing.T) {
	const groups = 64
	fill := func(d *Decoder, data, parity, n int) (sent int) {
		for g := range uint32(groups) {
			for i := range data - 1 { // one short: every group stays incomplete
				s := hostileData(g, i, data, parity, n)
				sent += len(s)
				require.NoError(t, d.Decode(s, testEpoch, func([]byte, bool) {}))
			}
		}
		return sent
	}

	d, err := NewDecoder(groups, 1e9, testMaxPacket)
	require.NoError(t, err)
	sent := fill(d, MaxDataShards, MaxParityShards, 1) // 11-byte shards, no limits
	t.Logf("tiny shards: %d bytes sent, %d bytes held (%d with a full-size buffer each)", sent, d.Held(), groups*(MaxDataShards-1)*(lengthSize+testMaxPacket))
	require.LessOrEqual(t, d.Held(), 2*sent, "stored regions are sized to what arrived")

	const budget = 200_000
	d, err = NewDecoder(groups, 1e9, testMaxPacket)
	require.NoError(t, err)
	require.NoError(t, d.SetLimits(Limits{MaxData: 10, MaxParity: 3, MaxBytes: budget}))
	sent = fill(d, 10, 3, testMaxPacket)
	t.Logf("full shards: %d bytes sent, %d bytes held, budget %d", sent, d.Held(), budget)
	require.LessOrEqual(t, d.Held(), budget)
	require.NotZero(t, d.Stats().Expired, "the oldest groups made room")

	// Once every group is gone, the pool keeps at most freeKeep bytes.
	d.Expire(testEpoch.Add(2e9))
	require.Zero(t, d.Groups())
	require.LessOrEqual(t, d.Held(), d.freeKeep)
	require.LessOrEqual(t, d.freeKeep, budget/2)
}
