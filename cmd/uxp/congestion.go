package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uxp-go/uxp"
)

// The congestion controller's view (uxp.CongestionStats) as `uxp demo`'s
// progress line and `uxp bench`'s output show it.

// congestionLine formats one session's congestion view, e.g.
// "bw 18.2 Mbit/s pacing 22.1 Mbit/s cwnd 64 KiB inflight 12 KiB state
// probe_bw:cruise". A zero estimate (no delivery-rate sample yet) reads
// "bw -"; a zero pacing rate "pacing off"; a zero window "cwnd unlimited".
func congestionLine(cs uxp.CongestionStats) string {
	var b strings.Builder
	b.WriteString("bw ")
	if cs.Bandwidth > 0 {
		b.WriteString(formatRate(cs.Bandwidth))
	} else {
		b.WriteString("-")
	}
	b.WriteString(" pacing ")
	if cs.PacingRate > 0 {
		b.WriteString(formatRate(cs.PacingRate))
	} else {
		b.WriteString("off")
	}
	b.WriteString(" cwnd ")
	if cs.CongestionWindow > 0 {
		b.WriteString(formatSize(cs.CongestionWindow))
	} else {
		b.WriteString("unlimited")
	}
	fmt.Fprintf(&b, " inflight %s state %s", formatSize(cs.BytesInFlight), orDash(cs.State))
	return b.String()
}

// congestionDetail is congestionLine plus the controller and its RTTs, for
// `uxp bench`'s per-scenario line.
func congestionDetail(cs uxp.CongestionStats) string {
	algo := string(cs.Algorithm)
	if algo == "" {
		algo = "default"
	}
	return fmt.Sprintf("%s (%s) min RTT %v smoothed RTT %v", congestionLine(cs), algo,
		roundRTT(cs.MinRTT), roundRTT(cs.SmoothedRTT))
}

// roundRTT rounds d for display like roundDuration, but keeps microseconds
// below 1 ms: loopback RTTs are tens of microseconds.
func roundRTT(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return roundDuration(d)
}

// congestionSummary condenses the views of several sessions: the median
// of each number over the sessions, and the most common state with how
// many of them are in it when they are not all ("probe_bw:cruise 28/32").
// Zero sessions give the zero value.
func congestionSummary(sts []uxp.CongestionStats) uxp.CongestionStats {
	if len(sts) == 0 {
		return uxp.CongestionStats{}
	}
	med := func(f func(uxp.CongestionStats) int64) int64 {
		v := make([]int64, len(sts))
		for i, s := range sts {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2] // the lower median: a value some session has
	}
	r := uxp.CongestionStats{
		Algorithm:        sts[0].Algorithm,
		Bandwidth:        uxp.Bandwidth(med(func(s uxp.CongestionStats) int64 { return int64(s.Bandwidth) })),
		PacingRate:       uxp.Bandwidth(med(func(s uxp.CongestionStats) int64 { return int64(s.PacingRate) })),
		BytesInFlight:    int(med(func(s uxp.CongestionStats) int64 { return int64(s.BytesInFlight) })),
		CongestionWindow: int(med(func(s uxp.CongestionStats) int64 { return int64(s.CongestionWindow) })),
		MinRTT:           time.Duration(med(func(s uxp.CongestionStats) int64 { return int64(s.MinRTT) })),
		SmoothedRTT:      time.Duration(med(func(s uxp.CongestionStats) int64 { return int64(s.SmoothedRTT) })),
	}
	count := map[string]int{}
	for _, s := range sts {
		count[s.State]++
	}
	states := make([]string, 0, len(count))
	for s := range count {
		states = append(states, s)
	}
	// Most common first; ties in name order, so the line is stable.
	slices.SortFunc(states, func(a, b string) int {
		if count[a] != count[b] {
			return count[b] - count[a]
		}
		return strings.Compare(a, b)
	})
	r.State = orDash(states[0])
	if n := count[states[0]]; n < len(sts) {
		r.State += fmt.Sprintf(" %d/%d", n, len(sts))
	}
	return r
}

// formatRate formats b in bits per second with three significant digits:
// "18.2 Mbit/s", "950 kbit/s", "1.25 Gbit/s".
func formatRate(b uxp.Bandwidth) string {
	bits := float64(b.BitsPerSecond())
	unit := "bit/s"
	for _, u := range []struct {
		scale float64
		name  string
	}{{1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}} {
		if bits >= u.scale {
			bits, unit = bits/u.scale, u.name
			break
		}
	}
	return sig3(bits) + " " + unit
}

// formatSize formats n bytes in binary units with three significant
// digits: "900 B", "64 KiB", "1.5 MiB".
func formatSize(n int) string {
	v := float64(n)
	for _, u := range []struct {
		scale float64
		name  string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if v >= u.scale {
			return sig3(v/u.scale) + " " + u.name
		}
	}
	return strconv.Itoa(n) + " B"
}

// sig3 formats v (at least 1) with three significant digits and no
// trailing zeros: 18.25 → "18.2" (round half to even), 64 → "64", 950.4 → "950".
func sig3(v float64) string {
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
