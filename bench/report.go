package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// report is everything one run measured; results.json is its JSON form.
type report struct {
	Started   time.Time `json:"started"`
	Elapsed   string    `json:"elapsed"`
	Command   string    `json:"command"`
	Quick     bool      `json:"quick"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	Load      string    `json:"load_avg_at_start"`
	Skipped   []string  `json:"skipped,omitempty"`
	Cases     []*bcase  `json:"cases"`
	Targets   []target  `json:"targets"`
}

// bcase is one (scenario, system, variant) with every repetition.
type bcase struct {
	Scenario string               `json:"scenario"`
	System   string               `json:"system"`
	Variant  string               `json:"variant,omitempty"`
	Samples  map[string][]float64 `json:"samples"`
	Summary  map[string]stat      `json:"summary"`
	Errors   []string             `json:"errors,omitempty"`
}

// stat is the median and the min–max spread of a metric's repetitions.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// target is one line of the target table.
type target struct {
	Name   string  `json:"name"`
	Ratio  float64 `json:"measured"` // NaN when not measured
	Bound  float64 `json:"bound"`
	AtMost bool    `json:"at_most"` // measured must be <= bound (else >=)
	Met    string  `json:"met"`     // "met", "NOT met", "not measured"
}

func (r *report) get(scen, sys, variant string) *bcase {
	for _, c := range r.Cases {
		if c.Scenario == scen && c.System == sys && c.Variant == variant {
			return c
		}
	}
	c := &bcase{Scenario: scen, System: sys, Variant: variant, Samples: map[string][]float64{}}
	r.Cases = append(r.Cases, c)
	return c
}

func (r *report) add(scen, sys, variant string, m map[string]float64, err error) {
	c := r.get(scen, sys, variant)
	if err != nil {
		c.Errors = append(c.Errors, err.Error())
		return
	}
	for k, v := range m {
		c.Samples[k] = append(c.Samples[k], v)
	}
}

func (r *report) summarize() {
	for _, c := range r.Cases {
		c.Summary = map[string]stat{}
		for k, v := range c.Samples {
			s := slices.Clone(v)
			slices.Sort(s)
			c.Summary[k] = stat{Median: median(s), Min: s[0], Max: s[len(s)-1], N: len(s)}
		}
	}
	r.Targets = r.targets()
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// med returns the median of a metric, NaN if it was not measured.
func (r *report) med(scen, sys, variant, metric string) float64 {
	for _, c := range r.Cases {
		if c.Scenario == scen && c.System == sys && c.Variant == variant {
			if s, ok := c.Summary[metric]; ok {
				return s.Median
			}
		}
	}
	return math.NaN()
}

func (r *report) targets() []target {
	ratio := func(scen, a, b, metric string) float64 {
		return r.med(scen, a, "", metric) / r.med(scen, b, "", metric)
	}
	t := []target{
		{Name: "bulk goodput ≥ 2.5× kcp-go Salsa20+FEC", Ratio: ratio("bulk", sysUXP, sysKCPSalsa, "goodput_MBps"), Bound: 2.5},
		{Name: "bulk goodput ≥ 1.3× quic-go", Ratio: ratio("bulk", sysUXP, sysQUIC, "goodput_MBps"), Bound: 1.3},
		{Name: "bulk goodput ≥ 60% of raw-UDP blast", Ratio: ratio("bulk", sysUXP, sysUDP, "goodput_MBps"), Bound: 0.6},
		{Name: "CPU per GB ≤ 0.6× quic-go", Ratio: ratio("bulk", sysUXP, sysQUIC, "cpu_s_per_GB"), Bound: 0.6, AtMost: true},
		{Name: "rr 1 KiB p50 ≤ 4× raw-UDP ping-pong", Ratio: ratio("rr", sysUXP, sysUDP, "p50_us"), Bound: 4, AtMost: true},
		{Name: "rr 1 KiB p99 ≤ 0.5× quic-go", Ratio: ratio("rr", sysUXP, sysQUIC, "p99_us"), Bound: 0.5, AtMost: true},
		{Name: "5% loss, FEC adaptive: p99 ≤ quic-go's", Ratio: ratio("loss", sysUXPAdaptive, sysQUIC, "p99_ms"), Bound: 1, AtMost: true},
		{Name: "5% loss, FEC adaptive: bytes ≤ 1.25× TCP", Ratio: ratio("loss", sysUXPAdaptive, sysTCP, "bytes_per_req"), Bound: 1.25, AtMost: true},
		{Name: "5% loss, FEC off: p99 ≤ 0.75× kcp-go plain", Ratio: ratio("loss", sysUXP, sysKCP, "p99_ms"), Bound: 0.75, AtMost: true},
		{Name: "10k sessions: server CPU ≤ 25% of one core (%)", Ratio: r.med("scale", sysUXP, "10000 sessions", "server_cpu_pct"), Bound: 25, AtMost: true},
		{Name: "10k sessions: live heap ≤ 8 KB/session", Ratio: r.med("scale", sysUXP, "10000 sessions", "heap_KB_per_session"), Bound: 8, AtMost: true},
		{Name: "10k sessions: 0 goroutines/session", Ratio: r.med("scale", sysUXP, "10000 sessions", "goroutines_per_session"), Bound: 0.001, AtMost: true},
		{Name: "10k sessions: probe p99 ≤ 2 ms", Ratio: r.med("scale", sysUXP, "10000 sessions", "probe_p99_ms"), Bound: 2, AtMost: true},
		{Name: "50k sessions holding (sessions live)", Ratio: r.med("scale", sysUXP, "50000 sessions", "sessions"), Bound: 50000},
		{Name: "handshakes/s with 1 core ≥ 3000 (server CPU-bound capacity, see §5)", Ratio: r.med("handshake", sysUXP, "1 core", "capacity_per_core"), Bound: 3000},
	}
	for _, f := range extraTargets {
		t = append(t, f(r)...)
	}
	for i := range t {
		x := &t[i]
		switch {
		case math.IsNaN(x.Ratio) || math.IsInf(x.Ratio, 0):
			x.Met = "not measured"
		case x.AtMost && x.Ratio <= x.Bound, !x.AtMost && x.Ratio >= x.Bound:
			x.Met = "met"
		default:
			x.Met = "NOT met"
		}
	}
	return t
}

func (r *report) write(dir string) error {
	// JSON cannot carry NaN; unmeasured ratios become -1.
	clean := *r
	clean.Targets = slices.Clone(r.Targets)
	for i := range clean.Targets {
		if math.IsNaN(clean.Targets[i].Ratio) || math.IsInf(clean.Targets[i].Ratio, 0) {
			clean.Targets[i].Ratio = -1
		}
	}
	j, err := json.MarshalIndent(&clean, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644)
}

// extraScenarios (in report order) and extraTargets are what scenario
// files outside this one register from their init functions.
var (
	extraScenarios []string
	extraTargets   []func(*report) []target
)

// Columns shown per scenario, in order, with their unit labels.
var scenarioColumns = map[string][][2]string{
	"bulk":      {{"goodput_MBps", "goodput MB/s"}, {"cpu_s_per_GB", "CPU s/GB (both ends)"}},
	"rr":        {{"p50_us", "p50 µs"}, {"p99_us", "p99 µs"}, {"p999_us", "p99.9 µs"}},
	"loss":      {{"p50_ms", "p50 ms"}, {"p99_ms", "p99 ms"}, {"max_ms", "max ms"}, {"bytes_per_req", "wire bytes/request"}},
	"scale":     {{"sessions", "sessions live"}, {"server_cpu_pct", "server CPU %"}, {"rss_KB_per_session", "RSS KB/session"}, {"heap_KB_per_session", "live heap KB/session"}, {"server_goroutines", "server goroutines"}, {"probe_p50_ms", "probe p50 ms"}, {"probe_p99_ms", "probe p99 ms"}},
	"handshake": {{"handshakes_per_s", "completed handshakes/s"}, {"server_cpu_pct", "server CPU %"}, {"server_cpu_us_per", "server CPU µs/handshake"}, {"capacity_per_core", "capacity/s per server core (1e6 ÷ CPU µs)"}, {"failures", "failed dials"}},
}

var scenarioTitles = map[string]string{
	"bulk":      "1. Bulk goodput, one session (16 KiB messages; raw UDP: 1400-byte datagrams, no reliability)",
	"rr":        "2. Closed-loop request/response, 1 KiB",
	"loss":      "3. Open-loop 1 KiB request/response at 200/s, 5% random loss each direction (netns + nftables)",
	"scale":     "4. Scale: sessions each sending 100 B/s, one probe client at 50 req/s",
	"handshake": "5. Handshakes per second the server completes (16 parallel dialers; with 1 core the server is pinned to CPU 0 and the load generator to CPU 1. The load generator does the same X25519 work per handshake as the server, so the completed rate is bounded by it; the capacity column is what the server's measured CPU per handshake allows one core)",
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# uxp benchmark results\n\n")
	fmt.Fprintf(&b, "- command: `%s`\n- started: %s, took %s, quick=%v\n- machine: %d CPUs, %s, load average at start %s\n",
		r.Command, r.Started.Format(time.RFC3339), r.Elapsed, r.Quick, r.CPUs, r.GoVersion, r.Load)
	fmt.Fprintf(&b, "- cells are median [min–max] over the repetitions; every case ran client and server as separate processes, interleaved across systems\n")
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "- skipped: %s\n", s)
	}
	b.WriteString("\n## Targets\n\n| target | measured | bound | result |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		m := "–"
		if !math.IsNaN(t.Ratio) && !math.IsInf(t.Ratio, 0) {
			m = num(t.Ratio)
		}
		op := "≥"
		if t.AtMost {
			op = "≤"
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s |\n", t.Name, m, op, num(t.Bound), t.Met)
	}
	for _, scen := range append([]string{"bulk", "rr", "loss", "scale", "handshake"}, extraScenarios...) {
		var cases []*bcase
		for _, c := range r.Cases {
			if c.Scenario == scen {
				cases = append(cases, c)
			}
		}
		if len(cases) == 0 {
			continue
		}
		cols := scenarioColumns[scen]
		fmt.Fprintf(&b, "\n## %s\n\n| system |", scenarioTitles[scen])
		for _, col := range cols {
			fmt.Fprintf(&b, " %s |", col[1])
		}
		b.WriteString("\n|---|")
		for range cols {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, c := range cases {
			name := c.System
			if c.Variant != "" {
				name += ", " + c.Variant
			}
			fmt.Fprintf(&b, "| %s |", name)
			for _, col := range cols {
				s, ok := c.Summary[col[0]]
				switch {
				case !ok:
					b.WriteString(" – |")
				case s.N == 1 || s.Min == s.Max:
					fmt.Fprintf(&b, " %s |", num(s.Median))
				default:
					fmt.Fprintf(&b, " %s [%s–%s] |", num(s.Median), num(s.Min), num(s.Max))
				}
			}
			if len(c.Errors) > 0 {
				fmt.Fprintf(&b, " errors: %s", strings.Join(c.Errors, "; "))
			}
			b.WriteString("\n")
		}
		r.ratios(&b, scen, cases)
	}
	return b.String()
}

// ratios prints uxp's median over each peer's, for every metric.
func (r *report) ratios(b *strings.Builder, scen string, cases []*bcase) {
	var uxps, peers []*bcase
	for _, c := range cases {
		if c.Variant != "" {
			return // scale and handshake have no peers
		}
		if isUXP(c.System) {
			uxps = append(uxps, c)
		} else {
			peers = append(peers, c)
		}
	}
	if len(uxps) == 0 || len(peers) == 0 {
		return
	}
	b.WriteString("\nRatios (uxp ÷ peer, medians):\n\n| uxp | metric |")
	for _, p := range peers {
		fmt.Fprintf(b, " ÷ %s |", p.System)
	}
	b.WriteString("\n|---|---|")
	for range peers {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, u := range uxps {
		for _, col := range scenarioColumns[scen] {
			fmt.Fprintf(b, "| %s | %s |", u.System, col[1])
			for _, p := range peers {
				x := r.med(scen, u.System, "", col[0]) / r.med(scen, p.System, "", col[0])
				if math.IsNaN(x) || math.IsInf(x, 0) {
					b.WriteString(" – |")
				} else {
					fmt.Fprintf(b, " %s× |", num(x))
				}
			}
			b.WriteString("\n")
		}
	}
}

func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func sortedNs(ns []int64) []float64 {
	s := make([]float64, len(ns))
	for i, v := range ns {
		s[i] = float64(v)
	}
	slices.Sort(s)
	return s
}

// pct is the nearest-rank p-th percentile of sorted. The rank is rounded
// down past a rounding error: 99.9/100*1000 is 999.0000000000001 in
// floating point, and the 99.9th percentile of 1000 values is the 999th.
func pct(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
