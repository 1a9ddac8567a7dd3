package cc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPacerUnlimited(t *testing.T) {
	p := NewPacer(0)
	for range 1000 {
		require.Zero(t, p.TimeUntilSend(t0, DefaultMSS))
		p.OnSent(t0, DefaultMSS)
	}
	p.SetRate(t0, 0)
	require.Zero(t, p.TimeUntilSend(t0, DefaultMSS))
}

// TestPacerSpacing paces 1000-byte packets at 1 MB/s (one per ms): the
// quantum is max(1 ms of rate, 2 packets) = 2 packets, so two leave at
// once and the rest 1 ms apart.
func TestPacerSpacing(t *testing.T) {
	p := NewPacer(1000)
	p.SetRate(t0, 1e6)
	now := t0
	var times []time.Duration
	for range 6 {
		next := p.NextSendTime(now, 1000)
		now = next
		p.OnSent(now, 1000)
		times = append(times, now.Sub(t0))
	}
	require.Equal(t, []time.Duration{0, 0, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond}, times)
	require.Equal(t, Bandwidth(1e6), p.Rate())
}

// TestPacerQuantum checks the burst size at high and low rates.
func TestPacerQuantum(t *testing.T) {
	tests := []struct {
		name  string
		rate  Bandwidth
		burst int // packets of 1000 bytes that leave at once from a full bucket
	}{
		{"low rate: 2 packets", 1e5, 2},
		{"1 ms of 10 MB/s", 1e7, 10},
		{"capped at 64 KiB", 1e9, 65},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(1000)
			p.SetRate(t0, tt.rate)
			p.OnSent(t0, 0)          // start the clock
			now := t0.Add(time.Hour) // a long idle fills the bucket, no more
			n := 0
			for p.TimeUntilSend(now, 1000) == 0 {
				p.OnSent(now, 1000)
				n++
			}
			require.Equal(t, tt.burst, n)
		})
	}
}

// TestPacerGamePacket: a 200-byte packet every 16 ms (a 60 Hz game tick)
// far below a 100 kB/s rate is never delayed.
func TestPacerGamePacket(t *testing.T) {
	p := NewPacer(1400)
	p.SetRate(t0, 1e5)
	for i := range 600 {
		now := t0.Add(time.Duration(i) * 16 * time.Millisecond)
		require.Zero(t, p.TimeUntilSend(now, 200), "tick %d", i)
		p.OnSent(now, 200)
	}
}

// TestPacerOversized: a packet larger than the quantum waits only for a
// full bucket, and the debt it leaves is bounded.
func TestPacerOversized(t *testing.T) {
	p := NewPacer(1000)
	p.SetRate(t0, 1e5) // quantum 2000 bytes
	require.Zero(t, p.TimeUntilSend(t0, 5000))
	p.OnSent(t0, 5000)
	// Debt is capped at one MSS: a full 2000-byte bucket is 30 ms away.
	require.Equal(t, 30*time.Millisecond, p.TimeUntilSend(t0, 5000))
}
