package main

import (
	"runtime/metrics"
)

// schedLatency reads the runtime's goroutine scheduling latency histogram
// and reports the p99 and the maximum of what was added since the last
// read.
type schedLatency struct {
	prev []uint64
}

const schedMetric = "/sched/latencies:seconds"

// read returns the p99 and the largest bucket's upper bound, in
// milliseconds, of the scheduling latencies since the previous read.
func (s *schedLatency) read() (p99, maxMs float64) {
	smp := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(smp)
	if smp[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, 0
	}
	h := smp[0].Value.Float64Histogram()
	d := make([]uint64, len(h.Counts))
	var total uint64
	for i, c := range h.Counts {
		d[i] = c
		if i < len(s.prev) {
			d[i] -= s.prev[i]
		}
		total += d[i]
	}
	s.prev = append(s.prev[:0], h.Counts...)
	if total == 0 {
		return 0, 0
	}
	upper := func(i int) float64 {
		b := h.Buckets[i+1]
		if b > 1e9 { // +Inf: the bucket's lower bound
			b = h.Buckets[i]
		}
		return b * 1e3
	}
	var cum uint64
	p99 = -1
	for i, c := range d {
		cum += c
		if p99 < 0 && cum*100 >= total*99 {
			p99 = upper(i)
		}
		if c > 0 {
			maxMs = upper(i)
		}
	}
	return p99, maxMs
}
