package cc

import (
	"fmt"
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
		bytes int // Quantum
	}{
		{"low rate: 2 packets", 1e5, 2, 2000},
		{"1 ms of 10 MB/s", 1e7, 10, 10_000},
		{"1 ms of 500 MB/s (loopback)", 5e8, 500, 500_000},
		{"capped at 1 MiB", 1e10, 1048, PacerMaxQuantum},
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
			require.Equal(t, tt.bytes, p.Quantum())
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

// TestPacerLateWake: a sender that waited for the pacer and came back
// late (a timer heap with 1 ms slots) gets the lateness's worth of the
// rate on top of the quantum, so that its average rate holds; one that
// comes back much later (it did not wait: idle) gets the quantum only.
func TestPacerLateWake(t *testing.T) {
	const rate = 1e7 // 10 MB/s: a 10 KB quantum, 1000-byte packets
	tests := []struct {
		name string
		late time.Duration // after the time NextSendTime gave
		want int           // packets that leave at once then
	}{
		{"on time", 0, 1},
		{"0.55 ms late", 550 * time.Microsecond, 6},
		{"1.5 ms late", 1500 * time.Microsecond, 16},
		{"2 ms late", PacerMaxLateness, 21},
		{"idle (10 ms late): the quantum only", 10 * time.Millisecond, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(1000)
			p.SetRate(t0, rate)
			now := t0
			for p.TimeUntilSend(now, 1000) == 0 { // empty the bucket
				p.OnSent(now, 1000)
			}
			at := p.NextSendTime(now, 1000)
			require.Equal(t, 100*time.Microsecond, at.Sub(now), "one packet's worth of tokens is 100 µs away")
			now = at.Add(tt.late)
			p.SetRate(now, rate) // as the session does at every event
			n := 0
			for p.TimeUntilSend(now, 1000) == 0 {
				p.OnSent(now, 1000)
				n++
			}
			require.Equal(t, tt.want, n)
			// The credit is for that moment only.
			now = now.Add(time.Hour)
			n = 0
			for p.TimeUntilSend(now, 1000) == 0 {
				p.OnSent(now, 1000)
				n++
			}
			require.Equal(t, 10, n, "after an idle period: the quantum")
		})
	}
}

// TestPacerTimerDrivenRate: a sender driven only by a coarse timer (each
// wake rounded up to the next whole millisecond, plus 1 ms, as the
// shard's timer heap does) still sends at the pacing rate on average.
func TestPacerTimerDrivenRate(t *testing.T) {
	for _, rate := range []Bandwidth{2.5e6, 1e7, 1e8} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			p := NewPacer(1200)
			p.SetRate(t0, rate)
			now, sent := t0, 0
			for now.Sub(t0) < time.Second {
				for p.TimeUntilSend(now, 1200) == 0 {
					p.OnSent(now, 1200)
					sent += 1200
				}
				at := p.NextSendTime(now, 1200)
				now = at.Truncate(time.Millisecond).Add(2 * time.Millisecond)
				p.SetRate(now, rate)
			}
			got := float64(sent) / now.Sub(t0).Seconds()
			t.Logf("%.0f B/s of %.0f", got, float64(rate))
			require.InDelta(t, float64(rate), got, 0.05*float64(rate))
		})
	}
}

// TestPacerChargeDebt: retransmissions charged with Charge delay what the
// pacer times by their own transmission time, up to PacerMaxDebt; a
// priority packet (a datagram) does not wait for that debt at all.
func TestPacerChargeDebt(t *testing.T) {
	tests := []struct {
		name   string
		charge int
		wait   time.Duration // for the next 1000-byte packet
	}{
		{"5 KB", 5000, 6 * time.Millisecond},
		{"20 KB", 20_000, 21 * time.Millisecond},
		{"bounded by PacerMaxDebt", 1 << 20, durationOf((PacerMaxDebt + 1000) / 1e6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(1000)
			p.SetRate(t0, 1e6) // 1 MB/s
			p.OnSent(t0, 0)
			for p.TimeUntilSend(t0, 1000) == 0 {
				p.OnSent(t0, 1000)
			}
			p.Charge(t0, tt.charge)
			require.Equal(t, tt.wait, p.TimeUntilSend(t0, 1000))
			require.Zero(t, p.TimeUntilSendPriority(t0, 100))
		})
	}
}

// TestPacerPriority: priority packets wait only for their own bucket, which
// only they drain and which earns PacerPriorityShare of the rate: a burst
// of them leaves at once up to the quantum, the rest follow at their share
// of the rate, whatever debt other packets left; what they send drains
// the shared bucket too, so other packets get only what they leave.
func TestPacerPriority(t *testing.T) {
	p := NewPacer(1000)
	p.SetRate(t0, 1e6) // 1 MB/s: a quantum of 2000 bytes
	p.Charge(t0, 30_000)
	sent := 0
	for p.TimeUntilSendPriority(t0, 100) == 0 {
		p.ChargePriority(t0, 100)
		sent += 100
	}
	require.Equal(t, 2000, sent, "the priority bucket's quantum, behind 30 KB of debt")
	require.Equal(t, durationOf(100/(1e6*PacerPriorityShare)), p.TimeUntilSendPriority(t0, 100), "then at their share of the rate")
	// Over 40 ms of priority packets offered at the whole rate, they get
	// their share, and the shared bucket is charged for them: it earned
	// 40 KB, paid them, and the 30 KB debt (and the first burst) shrank
	// by the rest.
	now := t0
	for range 400 {
		now = now.Add(100 * time.Microsecond)
		if p.TimeUntilSendPriority(now, 100) == 0 {
			p.ChargePriority(now, 100)
			sent += 100
		}
	}
	require.InDelta(t, 2000+PacerPriorityShare*40_000, sent, 200, "priority packets at their share of the rate")
	debt := 30_000 - 2000 + float64(sent) - 40_000 // what the shared bucket still owes: it started full
	require.InDelta(t, float64(durationOf((debt+1000)/1e6)), float64(p.TimeUntilSend(now, 1000)), float64(200*time.Microsecond), "other packets get what priority packets leave")
}
