package cc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAckPolicy(t *testing.T) {
	type pkt struct {
		pn        uint64
		size      int
		immediate bool
		ackNow    bool
	}
	tests := []struct {
		name string
		pkts []pkt
	}{
		{"every second full packet", []pkt{{0, 1000, false, false}, {1, 1000, false, true}, {2, 1000, false, false}, {3, 1000, false, true}}},
		{"short packet ends a burst", []pkt{{0, 1000, false, false}, {1, 200, false, true}}},
		{"sender's immediate mark", []pkt{{0, 1000, true, true}}},
		{"gap", []pkt{{0, 1000, false, false}, {1, 1000, false, true}, {3, 1000, false, true}}},
		{"gap filled", []pkt{{0, 1000, false, false}, {2, 1000, false, true}, {1, 1000, false, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &AckPolicy{FullSize: 1000}
			for i, p := range tt.pkts {
				got := a.OnPacket(t0, p.pn, p.size, p.immediate)
				require.Equal(t, p.ackNow, got, "packet %d", i)
				if got {
					a.OnAckSent()
					require.True(t, a.Deadline().IsZero())
				}
			}
		})
	}
}

func TestAckPolicyDelay(t *testing.T) {
	tests := []struct {
		name string
		rtt  time.Duration
		max  time.Duration
		want time.Duration
	}{
		{"no RTT yet: max delay", 0, 0, DefaultMaxAckDelay},
		{"RTT/4", 40 * time.Millisecond, 0, 10 * time.Millisecond},
		{"capped", time.Second, 0, DefaultMaxAckDelay},
		{"configured cap", time.Second, 5 * time.Millisecond, 5 * time.Millisecond},
		{"floor", 100 * time.Microsecond, 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &AckPolicy{MaxAckDelay: tt.max}
			a.SetRTT(tt.rtt)
			require.Equal(t, tt.want, a.AckDelay())
			require.False(t, a.OnPacket(t0, 7, DefaultMSS, false))
			require.Equal(t, t0.Add(tt.want), a.Deadline())
			// A second packet does not push the deadline back.
			a.AckEvery = 3
			require.False(t, a.OnPacket(t0.Add(time.Microsecond), 8, DefaultMSS, false))
			require.Equal(t, t0.Add(tt.want), a.Deadline())
		})
	}
	every := &AckPolicy{AckEvery: 1}
	require.True(t, every.OnPacket(t0, 0, DefaultMSS, false))
}
