package fec

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewEncoderArguments(t *testing.T) {
	tests := []struct {
		name                 string
		data, parity, maxPkt int
		wantErr              string
	}{
		{"ok", 10, 3, 1400, ""},
		{"max", MaxDataShards, MaxParityShards, MaxPacketSize, ""},
		{"no parity", 1, 0, 1, ""},
		{"zero data", 0, 3, 1400, "dataShards"},
		{"too much data", MaxDataShards + 1, 3, 1400, "dataShards"},
		{"negative parity", 10, -1, 1400, "parityShards"},
		{"too much parity", 10, MaxParityShards + 1, 1400, "parityShards"},
		{"zero packet", 10, 3, 0, "maxPacketSize"},
		{"huge packet", 10, 3, MaxPacketSize + 1, "maxPacketSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEncoder(tt.data, tt.parity, tt.maxPkt)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tt.parity, e.Parity())
				return
			}
			require.ErrorIs(t, err, ErrInvalidArgument)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestNewDecoderArguments(t *testing.T) {
	tests := []struct {
		name      string
		maxGroups int
		maxAge    time.Duration
		maxPkt    int
		wantErr   string
	}{
		{"ok", 32, time.Second, 1400, ""},
		{"zero groups", 0, time.Second, 1400, "maxGroups"},
		{"too many groups", MaxGroups + 1, time.Second, 1400, "maxGroups"},
		{"zero age", 32, 0, 1400, "maxAge"},
		{"zero packet", 32, time.Second, 0, "maxPacketSize"},
		{"huge packet", 32, time.Second, MaxPacketSize + 1, "maxPacketSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(tt.maxGroups, tt.maxAge, tt.maxPkt)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidArgument)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestEncoderShards(t *testing.T) {
	e := newTestEncoder(t, 3, 2)
	pkts := [][]byte{{1}, {2, 2, 2}, {3, 3}}
	shards := encodeAll(t, e, pkts, false)
	require.Len(t, shards, 5)
	for i, s := range shards {
		h := rawHeader(s[:HeaderSize])
		require.Equal(t, uint32(0), h.Group())
		require.Equal(t, i, h.Index())
		require.Equal(t, 3, h.DataShards())
		require.Equal(t, 2, h.ParityShards())
		require.Equal(t, len(s)-HeaderSize, h.Length())
		if i < 3 {
			require.Equal(t, byte(typeData), h.Type())
			require.Equal(t, pkts[i], s[HeaderSize:])
		} else {
			require.Equal(t, byte(typeParity), h.Type())
			require.Equal(t, lengthSize+3, h.Length(), "parity covers the largest packet")
		}
	}
	require.ErrorIs(t, e.Encode(make([]byte, testMaxPacket+1), testEpoch, func([]byte) {}), ErrPacketTooLarge)
}

// TestRecoveryAllLossPatterns loses every subset of at most parity shards of
// a group, in every configuration, and checks that each packet arrives once,
// intact, flagged as recovered exactly when its data shard was lost.
func TestRecoveryAllLossPatterns(t *testing.T) {
	for _, cfg := range []struct{ data, parity int }{{10, 3}, {4, 2}, {3, 1}, {1, 2}} {
		t.Run(fmt.Sprintf("RS(%d,%d)", cfg.data, cfg.parity), func(t *testing.T) {
			rng := newRand(t)
			n := 0
			subsets(cfg.data+cfg.parity, cfg.parity, func(lost []int) {
				n++
				e := newTestEncoder(t, cfg.data, cfg.parity)
				pkts := testPackets(rng, cfg.data)
				shards := encodeAll(t, e, pkts, false)
				require.Len(t, shards, cfg.data+cfg.parity)
				lostData := make(map[int]bool)
				skip := make(map[int]bool)
				for _, i := range lost {
					skip[i] = true
					if i < cfg.data {
						lostData[i] = true
					}
				}
				var kept [][]byte
				for i, s := range shards {
					if !skip[i] {
						kept = append(kept, s)
					}
				}

				// In order, a packet is recovered exactly when it was lost.
				d := newTestDecoder(t, 8)
				var got sink
				feed(t, d, kept, testEpoch, &got)
				got.requireDelivered(t, pkts, lostData)
				require.Equal(t, uint64(len(lostData)), d.Stats().Recovered)
				require.Zero(t, d.Groups())

				// Shuffled, parity may overtake data it then stands in for.
				rng.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
				d = newTestDecoder(t, 8)
				got = sink{}
				feed(t, d, kept, testEpoch, &got)
				got.requireDeliveredLoose(t, pkts, lostData)
				recovered := 0
				for _, g := range got.got {
					if g.recovered {
						recovered++
					}
				}
				require.Equal(t, uint64(recovered), d.Stats().Recovered)
				require.Zero(t, d.Groups())
			})
			t.Logf("%d loss patterns", n)
		})
	}
}

// TestLossBeyondParity checks that a group that lost more than its parity
// delivers only what arrived, and expires counted.
func TestLossBeyondParity(t *testing.T) {
	for _, cfg := range []struct{ data, parity int }{{10, 3}, {4, 2}, {3, 1}} {
		t.Run(fmt.Sprintf("RS(%d,%d)", cfg.data, cfg.parity), func(t *testing.T) {
			rng := newRand(t)
			for range 50 {
				pkts := testPackets(rng, cfg.data)
				shards := encodeAll(t, newTestEncoder(t, cfg.data, cfg.parity), pkts, false)
				order := rng.Perm(len(shards))
				nLost := cfg.parity + 1 + rng.IntN(cfg.data-1) // keep at least one shard
				d := newTestDecoder(t, 8)
				var got sink
				for _, i := range order[nLost:] {
					require.NoError(t, d.Decode(shards[i], testEpoch, got.deliver))
				}
				got.requireSubset(t, pkts)
				for _, g := range got.got {
					require.False(t, g.recovered)
				}
				require.Equal(t, 1, d.Groups())
				d.Expire(testEpoch.Add(time.Second - 1))
				require.Equal(t, 1, d.Groups(), "not yet maxAge old")
				d.Expire(testEpoch.Add(time.Second))
				require.Zero(t, d.Groups())
				require.Equal(t, uint64(1), d.Stats().Expired)
				// Late shards of the expired group are ignored.
				before := len(got.got)
				for _, i := range order[:nLost] {
					require.NoError(t, d.Decode(shards[i], testEpoch, got.deliver))
				}
				require.Len(t, got.got, before)
				require.Equal(t, uint64(nLost), d.Stats().Late)
			}
		})
	}
}

// TestStream runs many groups through the decoder with reordering across
// groups, duplicates and losses of up to parity shards per group.
func TestStream(t *testing.T) {
	tests := []struct {
		name       string
		data       int
		parity     int
		startGroup uint32
		window     int // shards are shuffled within windows this long
		duplicates bool
		groups     int
	}{
		{"in order", 10, 3, 0, 1, false, 20},
		{"reordered", 10, 3, 0, 40, false, 20},
		{"duplicates", 4, 2, 0, 12, true, 20},
		{"wrap", 4, 2, 0xFFFFFFFF - 5, 12, true, 12},
		{"wrap in order", 3, 1, 0xFFFFFFFF - 1, 1, false, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := newRand(t)
			e := newTestEncoder(t, tt.data, tt.parity)
			e.group = tt.startGroup
			pkts := testPackets(rng, tt.data*tt.groups) // tags wrap at 256; fine, checked per group below
			var stream [][]byte
			lost := make(map[string]bool)
			for g := range tt.groups {
				shards := encodeAll(t, e, pkts[g*tt.data:(g+1)*tt.data], false)
				for _, i := range rng.Perm(len(shards))[:rng.IntN(tt.parity+1)] {
					lost[string(shards[i])] = true
				}
				for _, s := range shards {
					if !lost[string(s)] {
						stream = append(stream, s)
						if tt.duplicates && rng.IntN(3) == 0 {
							stream = append(stream, s)
						}
					}
				}
			}
			for i := 0; i < len(stream); i += tt.window {
				w := stream[i:min(i+tt.window, len(stream))]
				rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
			}
			d := newTestDecoder(t, 16)
			count := make(map[string]int)
			for _, s := range stream {
				require.NoError(t, d.Decode(s, testEpoch, func(p []byte, _ bool) { count[string(p)]++ }))
			}
			require.Len(t, count, len(pkts))
			for _, p := range pkts {
				require.Equal(t, 1, count[string(p)])
			}
			require.Zero(t, d.Groups())
			if tt.duplicates {
				st := d.Stats()
				require.NotZero(t, st.Duplicates+st.Late)
			}
		})
	}
}

func TestExpiryByDistance(t *testing.T) {
	e := newTestEncoder(t, 4, 2)
	d := newTestDecoder(t, 16)
	rng := newRand(t)
	pkts := testPackets(rng, 4)
	old := encodeAll(t, e, pkts, false)
	var got sink
	// Lose three shards of group 0: it stays incomplete.
	feed(t, d, old[:3], testEpoch, &got)
	require.Equal(t, 1, d.Groups())

	e.group = groupWindow - 1 // still inside the window of group 0
	feed(t, d, encodeAll(t, e, testPackets(rng, 4), false)[:1], testEpoch, &got)
	require.Equal(t, 2, d.Groups())
	require.Zero(t, d.Stats().Expired)

	e.group = groupWindow // group 0 falls out of the window
	feed(t, d, encodeAll(t, e, testPackets(rng, 4), false)[:1], testEpoch, &got)
	require.Equal(t, 2, d.Groups())
	require.Equal(t, uint64(1), d.Stats().Expired)

	// Group 0's missing shards are now ignored, not delivered.
	n := len(got.got)
	feed(t, d, old[3:], testEpoch, &got)
	require.Len(t, got.got, n)
	require.Equal(t, 2, d.Groups())

	// A jump of more than the whole window drops everything.
	e.group = 10 * groupWindow
	feed(t, d, encodeAll(t, e, testPackets(rng, 4), false)[:1], testEpoch, &got)
	require.Equal(t, 1, d.Groups())
	require.Equal(t, uint64(3), d.Stats().Expired)
}

func TestMaxGroups(t *testing.T) {
	e := newTestEncoder(t, 4, 2)
	d := newTestDecoder(t, 3)
	rng := newRand(t)
	var got sink
	for g := range 10 {
		shards := encodeAll(t, e, testPackets(rng, 4), false)
		feed(t, d, shards[:2], testEpoch.Add(time.Duration(g)*time.Millisecond), &got)
		require.LessOrEqual(t, d.Groups(), 3)
	}
	require.Equal(t, uint64(7), d.Stats().Expired)
}

func TestFlush(t *testing.T) {
	tests := []struct {
		name string
		sent int   // data shards before Flush
		lost []int // shard indices lost (parity after the sent data)
	}{
		{"no loss", 4, nil},
		{"lose one data", 4, []int{1}},
		{"lose two data", 4, []int{0, 3}},
		{"lose parity", 4, []int{4, 5}},
		{"single packet lost", 1, []int{0}},
		{"single packet", 1, nil},
		{"nine of ten, lose last", 9, []int{8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := newRand(t)
			e := newTestEncoder(t, 10, 2)
			e.MaxGroupDelay = 5 * time.Millisecond
			require.True(t, e.Deadline().IsZero())
			pkts := testPackets(rng, tt.sent)
			var shards [][]byte
			emit := func(s []byte) { shards = append(shards, append([]byte(nil), s...)) }
			for i, p := range pkts {
				require.NoError(t, e.Encode(p, testEpoch.Add(time.Duration(i)*time.Millisecond), emit))
				require.Equal(t, testEpoch.Add(5*time.Millisecond), e.Deadline())
			}
			e.Flush(testEpoch.Add(5*time.Millisecond), emit)
			require.True(t, e.Deadline().IsZero())
			require.Len(t, shards, tt.sent+2)
			for _, s := range shards[tt.sent:] {
				require.Equal(t, tt.sent, rawHeader(s[:HeaderSize]).DataShards())
			}
			e.Flush(testEpoch, emit) // nothing pending: no-op
			require.Len(t, shards, tt.sent+2)

			lostData := make(map[int]bool)
			skip := make(map[int]bool)
			for _, i := range tt.lost {
				skip[i] = true
				if i < tt.sent {
					lostData[i] = true
				}
			}
			d := newTestDecoder(t, 8)
			var got sink
			for i, s := range shards {
				if !skip[i] {
					require.NoError(t, d.Decode(s, testEpoch, got.deliver))
				}
			}
			got.requireDelivered(t, pkts, lostData)
			if len(tt.lost) == 2 && len(lostData) == 0 {
				// All parity lost: the decoder cannot know the group was
				// short, so it waits for data that never comes.
				require.Equal(t, 1, d.Groups())
			} else {
				require.Zero(t, d.Groups())
			}

			// The next group starts afresh with the full data count.
			shards = shards[:0]
			require.NoError(t, e.Encode([]byte{1}, testEpoch, emit))
			require.Equal(t, 10, rawHeader(shards[0][:HeaderSize]).DataShards())
			require.Equal(t, uint32(1), rawHeader(shards[0][:HeaderSize]).Group())
		})
	}
}

func TestDeadline(t *testing.T) {
	e := newTestEncoder(t, 4, 1)
	require.NoError(t, e.Encode([]byte{1}, testEpoch, func([]byte) {}))
	require.Equal(t, testEpoch.Add(DefaultMaxGroupDelay), e.Deadline())
	e.MaxGroupDelay = -1
	require.True(t, e.Deadline().IsZero())

	// Without parity nothing is ever pending.
	e.MaxGroupDelay = 0
	require.NoError(t, e.SetParity(0))
	e.Flush(testEpoch, func([]byte) {})
	require.NoError(t, e.Encode([]byte{1}, testEpoch, func([]byte) {}))
	require.True(t, e.Deadline().IsZero())
}

// TestSetParity changes parity mid-group and between groups, through 0, and
// checks the headers and that a decoder recovers every group.
func TestSetParity(t *testing.T) {
	rng := newRand(t)
	e := newTestEncoder(t, 4, 2)
	require.ErrorIs(t, e.SetParity(-1), ErrInvalidArgument)
	require.ErrorIs(t, e.SetParity(MaxParityShards+1), ErrInvalidArgument)

	// Parity per packet as set before each Encode call.
	plan := []int{2, 2, 3, 3, 3, 3, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}
	pkts := testPackets(rng, len(plan))
	var shards [][]byte
	emit := func(s []byte) { shards = append(shards, append([]byte(nil), s...)) }
	for i, p := range pkts {
		require.NoError(t, e.SetParity(plan[i]))
		require.Equal(t, plan[i], e.Parity())
		require.NoError(t, e.Encode(p, testEpoch, emit))
	}
	e.Flush(testEpoch, emit)

	// A change applies from the next group: 4 packets at parity 2 (the 3 set
	// at packet 2 waits), 4 at 3 (the 0 set at packet 6 waits), 3 groups of
	// one at 0, 4 at 1, 4 at 2.
	type groupInfo struct{ data, parity, shards int }
	groups := make(map[uint32]*groupInfo)
	var order []uint32
	for _, s := range shards {
		h := rawHeader(s[:HeaderSize])
		g := groups[h.Group()]
		if g == nil {
			g = &groupInfo{data: h.DataShards(), parity: h.ParityShards()}
			groups[h.Group()] = g
			order = append(order, h.Group())
		}
		require.Equal(t, g.parity, h.ParityShards())
		g.shards++
	}
	var got []groupInfo
	for _, id := range order {
		got = append(got, *groups[id])
	}
	require.Equal(t, []groupInfo{{4, 2, 6}, {4, 3, 7}, {1, 0, 1}, {1, 0, 1}, {1, 0, 1}, {4, 1, 5}, {4, 2, 6}}, got)

	// Lose the first data shard of every group that has parity.
	d := newTestDecoder(t, 8)
	var out sink
	lost := make(map[int]bool)
	for _, s := range shards {
		h := rawHeader(s[:HeaderSize])
		if h.Index() == 0 && h.ParityShards() > 0 {
			lost[int(s[HeaderSize])] = true
			continue
		}
		require.NoError(t, d.Decode(s, testEpoch, out.deliver))
	}
	out.requireDelivered(t, pkts, lost)
	require.Zero(t, d.Groups())
}

func TestDecoderErrorsMatchMalformed(t *testing.T) {
	for _, err := range []error{ErrShortShard, ErrShardType, ErrShardCount, ErrShardIndex, ErrShardLength, ErrShardMismatch, ErrRecoveryFailed} {
		require.True(t, errors.Is(err, ErrMalformed), "%v", err)
		require.NotEqual(t, ErrMalformed.Error(), err.Error())
	}
	require.False(t, errors.Is(ErrPacketTooLarge, ErrMalformed))
}

// TestDuplicates replays shards at each stage of a group's life.
func TestDuplicates(t *testing.T) {
	shards, pkts := validGroup(t) // RS(4,2): data 0-3, parity 4-5
	tests := []struct {
		name           string
		order          []int
		wantDuplicates uint64
		wantLate       uint64
		lost           map[int]bool
	}{
		{"data twice", []int{0, 0, 1, 2, 3}, 1, 0, nil},
		{"parity twice", []int{4, 4, 0, 1, 2}, 1, 0, map[int]bool{3: true}},
		{"data after recovery", []int{4, 5, 0, 1, 2, 3}, 0, 2, map[int]bool{2: true, 3: true}},
		{"everything after completion", []int{0, 1, 2, 3, 0, 1, 4, 5}, 0, 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(t, 8)
			var got sink
			for _, i := range tt.order {
				require.NoError(t, d.Decode(shards[i], testEpoch, got.deliver))
			}
			got.requireDelivered(t, pkts, tt.lost)
			require.Equal(t, tt.wantDuplicates, d.Stats().Duplicates)
			require.Equal(t, tt.wantLate, d.Stats().Late)
			require.Zero(t, d.Groups())
		})
	}
}
