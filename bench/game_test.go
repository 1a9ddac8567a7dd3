package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestGameMetrics(t *testing.T) {
	ms := func(v ...int) []int64 {
		r := make([]int64, len(v))
		for i, x := range v {
			r[i] = int64(time.Duration(x) * time.Millisecond)
		}
		return r
	}
	// 1000 answers: 1..1000 ms in reverse order, so the percentiles are
	// their nearest ranks.
	var all []int
	for i := 1000; i >= 1; i-- {
		all = append(all, i)
	}
	tests := []struct {
		name    string
		res     clientResult
		wire    int64
		want    map[string]float64
		wantErr bool
	}{
		{
			name: "1000 ticks, all answered",
			res:  clientResult{RTTNs: ms(all...), Sent: 1000},
			wire: 1000 * 2 * 300,
			want: map[string]float64{"p50_ms": 500, "p99_ms": 990, "p999_ms": 999, "max_ms": 1000, "lost": 0, "ticks": 1000, "wire_bytes_per_msg": 300},
		},
		{
			name: "some unanswered",
			res:  clientResult{RTTNs: ms(5, 1, 3, 2), Sent: 6},
			wire: 12 * 250,
			want: map[string]float64{"p50_ms": 2, "p99_ms": 5, "p999_ms": 5, "max_ms": 5, "lost": 2, "ticks": 6, "wire_bytes_per_msg": 250},
		},
		{
			name:    "no answers",
			res:     clientResult{Sent: 600},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gameMetrics(tt.res, tt.wire)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("gameMetrics = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range tt.want {
				if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
				}
			}
		})
	}
}

// TestGameReport checks that the game scenario is in the report: its
// columns name metrics gameMetrics produces, and a run's cases render with
// ratios against the peers.
func TestGameReport(t *testing.T) {
	m, err := gameMetrics(clientResult{RTTNs: []int64{int64(time.Millisecond)}, Sent: 1}, 500)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range scenarioColumns["game"] {
		if _, ok := m[col[0]]; !ok {
			t.Errorf("column %q is not a game metric", col[0])
		}
	}
	r := &report{}
	r.add("game", sysUXP, "", m, nil)
	r.add("game", sysQUIC, "", m, nil)
	r.summarize()
	md := r.markdown()
	for _, want := range []string{scenarioTitles["game"], "| uxp | p99 ms | 1.00× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
