package arq

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/wire"
)

var benchSink uint64

func TestDeliveryTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	var tr deliveryTracker
	tr.sent(1, ms(0)) // sn 0
	tr.sent(3, ms(5)) // sn 1..3
	tr.sent(1, ms(6)) // sn 4

	_, ok := tr.acked(0, 0, ms(10))
	require.False(t, ok, "una 0 completes nothing")
	d, ok := tr.acked(1, 0, ms(40))
	require.True(t, ok)
	require.Equal(t, 20*time.Millisecond, d, "no heartbeat RTT: half the smallest round trip (40ms) stands in")
	_, ok = tr.acked(3, 40*time.Millisecond, ms(50))
	require.False(t, ok, "una 3 leaves the 3-segment message incomplete")
	d, ok = tr.acked(5, 40*time.Millisecond, ms(100))
	require.True(t, ok)
	require.Equal(t, 75*time.Millisecond, d, "95ms round trip less RTT/2")
	d, ok = tr.acked(5, 40*time.Millisecond, ms(100))
	require.True(t, ok, "one una may complete several messages")
	require.Equal(t, 74*time.Millisecond, d)
	_, ok = tr.acked(5, 40*time.Millisecond, ms(100))
	require.False(t, ok)

	// A full ring skips messages but keeps counting their segments.
	var full deliveryTracker
	for range trackerSlots + 10 {
		full.sent(2, ms(0))
	}
	require.Equal(t, trackerSlots, full.n)
	require.EqualValues(t, 2*(trackerSlots+10), full.nextSN)
	n := 0
	for {
		if _, ok := full.acked(full.nextSN, 0, ms(1)); !ok {
			break
		}
		n++
	}
	require.Equal(t, trackerSlots, n)
	full.sent(1, ms(2))
	d, ok = full.acked(full.nextSN, 0, ms(3))
	require.True(t, ok, "sampling resumes once the ring drains")
	require.Equal(t, 500*time.Microsecond, d, "the estimate is exact for this fixed sequence")

	// Segment numbers wrap.
	wrap := deliveryTracker{nextSN: ^uint32(0) - 1}
	wrap.sent(4, ms(0)) // ends past the wrap, at 2
	_, ok = wrap.acked(^uint32(0), 0, ms(1))
	require.False(t, ok)
	_, ok = wrap.acked(2, 0, ms(1))
	require.True(t, ok)
}

// BenchmarkLatencyRecording is the per-message cost the latency histogram
// adds to the data path: recording a sent message, reading una from an
// incoming 1-segment frame, and summing the samples (the root records them in
// the session's histogram). The baseline only parses the frame header.
func BenchmarkLatencyRecording(b *testing.B) {
	seg := make([]byte, wire.SegmentHeaderSize+100)
	binary.LittleEndian.PutUint32(seg[20:24], 100)
	now := time.Unix(1000, 0)
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink += uint64(binary.LittleEndian.Uint32(seg[20:24]))
		}
	})
	b.Run("record", func(b *testing.B) {
		var tr deliveryTracker
		var sum time.Duration
		b.ReportAllocs()
		for b.Loop() {
			benchSink += uint64(binary.LittleEndian.Uint32(seg[20:24]))
			tr.sent(1, now)
			binary.LittleEndian.PutUint32(seg[16:20], tr.nextSN)
			una := binary.LittleEndian.Uint32(seg[16:20])
			for {
				d, ok := tr.acked(una, 40*time.Millisecond, now.Add(45*time.Millisecond))
				if !ok {
					break
				}
				sum += d
			}
		}
		benchSink += uint64(sum)
	})
}
