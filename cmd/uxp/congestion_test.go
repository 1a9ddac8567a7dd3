package main

import (
	"testing"
	"time"

	"github.com/uxp-go/uxp"
)

func TestFormatRate(t *testing.T) {
	tests := []struct {
		in   uxp.Bandwidth
		want string
	}{
		{0, "0 bit/s"},
		{100 * uxp.BytePerSecond, "800 bit/s"},
		{950 * uxp.KilobitPerSecond, "950 kbit/s"},
		{18_250 * uxp.KilobitPerSecond, "18.2 Mbit/s"},
		{18_260 * uxp.KilobitPerSecond, "18.3 Mbit/s"},
		{20 * uxp.MegabitPerSecond, "20 Mbit/s"},
		{1_250 * uxp.MegabitPerSecond, "1.25 Gbit/s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatRate(tt.in); got != tt.want {
				t.Errorf("formatRate(%d B/s) = %q, want %q", int64(tt.in), got, tt.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int
		want string
	}{
		{0, "0 B"},
		{900, "900 B"},
		{64 << 10, "64 KiB"},
		{1536 << 10, "1.5 MiB"},
		{123456, "121 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatSize(tt.in); got != tt.want {
				t.Errorf("formatSize(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCongestionLine(t *testing.T) {
	tests := []struct {
		name string
		in   uxp.CongestionStats
		want string
	}{
		{
			name: "probing",
			in: uxp.CongestionStats{State: "probe_bw:cruise", Bandwidth: 18_200 * uxp.KilobitPerSecond,
				PacingRate: 22_100 * uxp.KilobitPerSecond, CongestionWindow: 64 << 10, BytesInFlight: 12 << 10},
			want: "bw 18.2 Mbit/s pacing 22.1 Mbit/s cwnd 64 KiB inflight 12 KiB state probe_bw:cruise",
		},
		{
			name: "before the first sample, unlimited",
			in:   uxp.CongestionStats{State: "unlimited"},
			want: "bw - pacing off cwnd unlimited inflight 0 B state unlimited",
		},
		{
			name: "no state",
			in:   uxp.CongestionStats{},
			want: "bw - pacing off cwnd unlimited inflight 0 B state -",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := congestionLine(tt.in); got != tt.want {
				t.Errorf("congestionLine = %q\nwant             %q", got, tt.want)
			}
		})
	}
}

func TestCongestionDetail(t *testing.T) {
	cs := uxp.CongestionStats{Algorithm: uxp.CongestionModel, State: "startup", Bandwidth: 2 * uxp.MegabitPerSecond,
		PacingRate: 5 * uxp.MegabitPerSecond, CongestionWindow: 30000, MinRTT: 20 * time.Millisecond, SmoothedRTT: 23456 * time.Microsecond}
	want := "bw 2 Mbit/s pacing 5 Mbit/s cwnd 29.3 KiB inflight 0 B state startup (bbr) min RTT 20ms smoothed RTT 23ms"
	if got := congestionDetail(cs); got != want {
		t.Errorf("congestionDetail = %q\nwant               %q", got, want)
	}
	cs.MinRTT, cs.SmoothedRTT = 23456*time.Nanosecond, 0
	if got := congestionDetail(cs); got != "bw 2 Mbit/s pacing 5 Mbit/s cwnd 29.3 KiB inflight 0 B state startup (bbr) min RTT 23µs smoothed RTT 0s" {
		t.Errorf("loopback RTTs: %q", got)
	}
	cs.MinRTT, cs.SmoothedRTT = 20*time.Millisecond, 23456*time.Microsecond
	cs.Algorithm = ""
	if got := congestionDetail(cs); got != "bw 2 Mbit/s pacing 5 Mbit/s cwnd 29.3 KiB inflight 0 B state startup (default) min RTT 20ms smoothed RTT 23ms" {
		t.Errorf("zero Algorithm: %q", got)
	}
}

func TestCongestionSummary(t *testing.T) {
	mk := func(state string, mbit int64, cwnd int, rtt time.Duration) uxp.CongestionStats {
		return uxp.CongestionStats{Algorithm: uxp.CongestionModel, State: state, Bandwidth: uxp.Bandwidth(mbit) * uxp.MegabitPerSecond,
			PacingRate: uxp.Bandwidth(mbit+1) * uxp.MegabitPerSecond, CongestionWindow: cwnd, BytesInFlight: cwnd / 2,
			MinRTT: rtt, SmoothedRTT: rtt + time.Millisecond}
	}
	tests := []struct {
		name string
		in   []uxp.CongestionStats
		want uxp.CongestionStats
	}{
		{name: "none", in: nil, want: uxp.CongestionStats{}},
		{name: "one", in: []uxp.CongestionStats{mk("startup", 3, 1000, 5*time.Millisecond)},
			want: mk("startup", 3, 1000, 5*time.Millisecond)},
		{
			name: "odd count: the middle of each number; the common state and its share",
			in: []uxp.CongestionStats{
				mk("probe_bw:cruise", 30, 9000, 9*time.Millisecond),
				mk("probe_bw:up", 10, 1000, 1*time.Millisecond),
				mk("probe_bw:cruise", 20, 5000, 5*time.Millisecond),
			},
			want: func() uxp.CongestionStats {
				c := mk("probe_bw:cruise 2/3", 20, 5000, 5*time.Millisecond)
				return c
			}(),
		},
		{
			name: "even count: the lower middle; a tie in states goes to the first name",
			in: []uxp.CongestionStats{
				mk("startup", 40, 4000, 4*time.Millisecond),
				mk("drain", 10, 1000, 1*time.Millisecond),
				mk("startup", 30, 3000, 3*time.Millisecond),
				mk("drain", 20, 2000, 2*time.Millisecond),
			},
			want: mk("drain 2/4", 20, 2000, 2*time.Millisecond),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := congestionSummary(tt.in); got != tt.want {
				t.Errorf("congestionSummary =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestProgressCongestion(t *testing.T) {
	if got := progressCongestion(nil); got != "" {
		t.Errorf("no ready client: %q, want nothing", got)
	}
	cs := uxp.CongestionStats{State: "probe_bw:down", Bandwidth: 8 * uxp.MegabitPerSecond, PacingRate: 7 * uxp.MegabitPerSecond, CongestionWindow: 48 << 10}
	want := " | clients' median: bw 8 Mbit/s pacing 7 Mbit/s cwnd 48 KiB inflight 0 B state probe_bw:down"
	if got := progressCongestion([]uxp.CongestionStats{cs}); got != want {
		t.Errorf("progressCongestion = %q\nwant                 %q", got, want)
	}
}
