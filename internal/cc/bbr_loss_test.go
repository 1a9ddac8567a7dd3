package cc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBBRLossJudgement checks endRound's verdict on one round of a flow in
// ProbeBW with a 20 ms minimum RTT: random loss at about the learned
// baseline is not congestion even while a queue stands; loss clearly
// above it with a standing queue is; and without a queue nothing is.
func TestBBRLossJudgement(t *testing.T) {
	const minRTT = 20 * time.Millisecond
	queue := roundStats{minRTT: minRTT + 5*time.Millisecond, maxRTT: minRTT + 10*time.Millisecond}
	empty := roundStats{minRTT: minRTT, maxRTT: minRTT + 10*time.Millisecond}
	tests := []struct {
		name      string
		baseline  float64
		round     roundStats
		acked     int
		lost      int
		congested bool
	}{
		// 5 % baseline, 100 packets: sigma of the baseline 2.2 %.
		{"random loss at the baseline, queue standing", 0.05, queue, 95, 5, false},
		{"random loss one sigma above, queue standing", 0.05, queue, 93, 7, false},
		{"random loss just under two sigmas, queue standing", 0.05, queue, 91, 9, false},
		{"loss three sigmas above, queue standing", 0.05, queue, 88, 12, true},
		{"queue overflow, queue standing", 0.05, queue, 80, 20, true},
		{"queue overflow, queue emptied", 0.05, empty, 80, 20, false},
		// A clean path: two losses with a standing queue are congestion.
		{"clean path, two losses, queue standing", 0, queue, 98, 2, true},
		{"clean path, one loss, queue standing", 0, queue, 99, 1, false},
		{"clean path, two losses, queue emptied", 0, empty, 98, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBBR(Config{MSS: 1000})
			b.state, b.phase, b.filledPipe = bbrProbeBW, phaseCruise, true
			b.minRTT, b.baseline = minRTT, tt.baseline
			b.round = tt.round
			b.round.ackedPkts, b.round.lostPkts = tt.acked, tt.lost
			_, congested := b.endRound()
			require.Equal(t, tt.congested, congested)
		})
	}
}

// TestBBRRandomLossKeepsModel feeds a ProbeBW flow rounds of 5 % random
// loss (the count drawn from a fixed sequence around the mean) with a
// standing queue: once the baseline has been learned from rounds whose
// queue emptied, no round is judged congested (the verdict that cuts the
// bandwidth model and inflight_hi and starts a DOWN).
func TestBBRRandomLossKeepsModel(t *testing.T) {
	const (
		minRTT = 20 * time.Millisecond
		pkts   = 100
	)
	b := NewBBR(Config{MSS: 1000})
	b.state, b.phase, b.filledPipe = bbrProbeBW, phaseCruise, true
	b.minRTT = minRTT
	// Learn the baseline: rounds in which the queue emptied.
	for range 40 {
		b.round = roundStats{ackedPkts: 95, lostPkts: 5, minRTT: minRTT, maxRTT: minRTT + time.Millisecond}
		b.endRound()
	}
	require.InDelta(t, 0.05, b.baseline, 0.005)
	// Rounds with a standing queue and 2-9 losses in 100 (mean 5.1).
	losses := []int{5, 7, 3, 6, 9, 4, 5, 2, 8, 6, 4, 5, 7, 3, 6, 5, 4, 8, 5, 6}
	for i, l := range losses {
		b.round = roundStats{ackedPkts: pkts - l, lostPkts: l, minRTT: minRTT + 5*time.Millisecond, maxRTT: minRTT + 9*time.Millisecond}
		_, congested := b.endRound()
		require.False(t, congested, "round %d with %d of %d lost", i, l, pkts)
	}
}
