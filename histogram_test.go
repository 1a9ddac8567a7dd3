package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int
	}{
		{"negative clamps to first", -time.Second, 0},
		{"zero", 0, 0},
		{"on first bound", time.Millisecond, 0},
		{"just above first bound", time.Millisecond + 1, 1},
		{"on 100ms bound", 100 * time.Millisecond, 14},
		{"on last bound", 5 * time.Second, len(latencyBounds) - 1},
		{"beyond last bound", time.Minute, len(latencyBounds)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogramCounters
			h.observe(tt.d)
			s := h.snapshot()
			require.EqualValues(t, 1, s.Count)
			require.EqualValues(t, 1, s.Counts[tt.want], "bucket of %v", tt.d)
			require.Equal(t, max(tt.d, 0), s.Sum)
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h histogramCounters
	require.Zero(t, h.snapshot().Quantile(0.5), "no samples")
	for range 90 {
		h.observe(3 * time.Millisecond) // bucket (2ms, 3ms]
	}
	for range 10 {
		h.observe(150 * time.Millisecond) // bucket (100ms, 150ms]
	}
	s := h.snapshot()
	require.EqualValues(t, 100, s.Count)
	require.Equal(t, (90*3*time.Millisecond+10*150*time.Millisecond)/100, s.Mean())
	p50 := s.Quantile(0.5)
	require.True(t, p50 > 2*time.Millisecond && p50 <= 3*time.Millisecond, "p50 %v", p50)
	p99 := s.Quantile(0.99)
	require.True(t, p99 > 100*time.Millisecond && p99 <= 150*time.Millisecond, "p99 %v", p99)
	require.Equal(t, 150*time.Millisecond, s.Quantile(1))
	require.Equal(t, 2*time.Millisecond, s.Quantile(0), "p0 is the first used bucket's lower bound")

	var all Histogram
	all.add(s)
	all.add(s)
	require.EqualValues(t, 200, all.Count)
	require.EqualValues(t, 180, all.Counts[bucketOf(3*time.Millisecond)])
	require.Len(t, LatencyBounds(), HistogramBuckets-1)
}
