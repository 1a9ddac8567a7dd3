package main

import (
	"slices"
	"sync"
	"time"
)

// latencies collects duration samples and reports percentiles. It keeps
// every sample: a demo run has at most clients × messages of them. It is
// safe for concurrent use.
type latencies struct {
	mu      sync.Mutex
	samples []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// summary returns the sample count and the p50, p99 and max samples
// (nearest-rank percentiles), all zero if there are none.
func (l *latencies) summary() latencySummary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	return summarize(s)
}

type latencySummary struct {
	n             int
	p50, p99, max time.Duration
}

// summarize sorts s in place.
func summarize(s []time.Duration) latencySummary {
	if len(s) == 0 {
		return latencySummary{}
	}
	slices.Sort(s)
	return latencySummary{n: len(s), p50: percentile(s, 50), p99: percentile(s, 99), max: s[len(s)-1]}
}

// percentile returns the nearest-rank p-th percentile of sorted, which must
// not be empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	return sorted[max(rank, 1)-1]
}

// roundDuration rounds d for display: to 0.1 ms below 10 ms, to 1 ms below
// 10 s, to 0.1 s above.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d < 10*time.Second:
		return d.Round(time.Millisecond)
	default:
		return d.Round(100 * time.Millisecond)
	}
}
