package uxp

import (
	"sync/atomic"
	"time"
)

// The latency histogram has fixed buckets, so that recording a sample is a
// short scan and an atomic add, and snapshots never allocate.

/* Implementation constants */

// latencyBounds are the inclusive upper bounds of the histogram buckets:
// fine around the delays of real paths (5 to 100 ms), so that quantiles
// interpolated inside a bucket stay close. A final, unbounded bucket
// follows the last one.
var latencyBounds = [...]time.Duration{
	1 * time.Millisecond,
	2 * time.Millisecond,
	3 * time.Millisecond,
	5 * time.Millisecond,
	7 * time.Millisecond,
	10 * time.Millisecond,
	15 * time.Millisecond,
	20 * time.Millisecond,
	25 * time.Millisecond,
	30 * time.Millisecond,
	40 * time.Millisecond,
	50 * time.Millisecond,
	60 * time.Millisecond,
	80 * time.Millisecond,
	100 * time.Millisecond,
	150 * time.Millisecond,
	200 * time.Millisecond,
	300 * time.Millisecond,
	500 * time.Millisecond,
	1000 * time.Millisecond,
	2000 * time.Millisecond,
	5000 * time.Millisecond,
}

// HistogramBuckets is the number of buckets in a Histogram: one per bound
// in LatencyBounds plus the unbounded last one.
const HistogramBuckets = len(latencyBounds) + 1

// LatencyBounds returns the inclusive upper bounds of a Histogram's
// buckets, smallest first; the last bucket, Counts[len(bounds)], has no
// upper bound. The result is a fresh copy.
func LatencyBounds() []time.Duration {
	b := make([]time.Duration, len(latencyBounds))
	copy(b, latencyBounds[:])
	return b
}

// Histogram is a snapshot of a latency distribution with fixed buckets.
type Histogram struct {
	// Counts[i] is the number of samples d with LatencyBounds()[i-1] < d <=
	// LatencyBounds()[i] (not cumulative). The last bucket has no upper
	// bound.
	Counts [HistogramBuckets]uint64
	// Count is the number of samples, Sum their total.
	Count uint64
	Sum   time.Duration
}

// Mean is the average sample, or zero without samples.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Quantile estimates the q-quantile (0 <= q <= 1) by interpolating inside
// the bucket it falls in; in the unbounded last bucket it answers that
// bucket's lower bound. It returns zero without samples.
func (h Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h.Counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var seen uint64
	for i, n := range h.Counts {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		var lo time.Duration
		if i > 0 {
			lo = latencyBounds[i-1]
		}
		if i == len(latencyBounds) {
			return lo
		}
		frac := (rank - float64(seen)) / float64(n)
		return lo + time.Duration(frac*float64(latencyBounds[i]-lo))
	}
	return latencyBounds[len(latencyBounds)-1]
}

func (h *Histogram) add(o Histogram) {
	for i := range h.Counts {
		h.Counts[i] += o.Counts[i]
	}
	h.Count += o.Count
	h.Sum += o.Sum
}

// bucketOf returns the index of the bucket d falls in.
func bucketOf(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}

// histogramCounters is the concurrently readable form of Histogram. One
// goroutine (a shard) records, with two atomic adds; any goroutine may
// snapshot. Count is derived from the buckets, so it always matches them;
// a snapshot taken while a sample is being recorded may miss it in Sum.
type histogramCounters struct {
	counts [HistogramBuckets]atomic.Uint64
	sum    atomic.Int64
}

func (h *histogramCounters) observe(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(d)].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogramCounters) snapshot() Histogram {
	var s Histogram
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}
