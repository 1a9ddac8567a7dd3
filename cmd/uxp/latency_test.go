package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want latencySummary
	}{
		{name: "empty", in: nil, want: latencySummary{}},
		{name: "one", in: ms(7), want: latencySummary{n: 1, p50: 7 * time.Millisecond, p99: 7 * time.Millisecond, max: 7 * time.Millisecond}},
		{name: "unsorted", in: ms(5, 1, 4, 2, 3), want: latencySummary{n: 5, p50: 3 * time.Millisecond, p99: 5 * time.Millisecond, max: 5 * time.Millisecond}},
		{name: "hundred", in: func() []time.Duration {
			s := make([]time.Duration, 100)
			for i := range s {
				s[i] = time.Duration(100-i) * time.Millisecond
			}
			return s
		}(), want: latencySummary{n: 100, p50: 50 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Fatalf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}
