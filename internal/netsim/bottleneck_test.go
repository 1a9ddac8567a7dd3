package netsim

import (
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBottleneckConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  BottleneckConfig
		ok   bool
	}{
		{"minimal", BottleneckConfig{Rate: 1}, true},
		{"full", BottleneckConfig{Rate: 1e6, QueueDelay: time.Millisecond, QueueBytes: 10, Delay: time.Millisecond,
			Schedule: []RateStep{{At: 0, Rate: 5}, {At: time.Second, Rate: 6}}}, true},
		{"zero rate", BottleneckConfig{}, false},
		{"negative queue delay", BottleneckConfig{Rate: 1, QueueDelay: -1}, false},
		{"negative queue bytes", BottleneckConfig{Rate: 1, QueueBytes: -1}, false},
		{"negative delay", BottleneckConfig{Rate: 1, Delay: -1}, false},
		{"zero step rate", BottleneckConfig{Rate: 1, Schedule: []RateStep{{At: 1}}}, false},
		{"unordered steps", BottleneckConfig{Rate: 1, Schedule: []RateStep{{At: 2, Rate: 1}, {At: 1, Rate: 1}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidBottleneck)
		})
	}
}

// TestBottleneckSerializes checks the timing of a burst: 1000-byte packets
// at 8 Mbit/s take 1 ms each, plus the propagation delay.
func TestBottleneckSerializes(t *testing.T) {
	b := NewBottleneck(BottleneckConfig{Rate: 8_000_000, Delay: 10 * time.Millisecond}, t0)
	for i := range 5 {
		at, wait, ok := b.Enqueue(t0, 1000)
		require.True(t, ok)
		require.Equal(t, time.Duration(i)*time.Millisecond, wait)
		require.Equal(t, t0.Add(time.Duration(i+1)*time.Millisecond+10*time.Millisecond), at)
	}
	require.Equal(t, 5*time.Millisecond, b.QueueDelay(t0))
	require.Equal(t, 5000, b.QueuedBytes(t0))
	require.Equal(t, 2000, b.QueuedBytes(t0.Add(3*time.Millisecond)))
	// An idle link sends at once.
	at, wait, ok := b.Enqueue(t0.Add(time.Second), 1000)
	require.True(t, ok)
	require.Zero(t, wait)
	require.Equal(t, t0.Add(time.Second+11*time.Millisecond), at)
	st := b.Stats()
	require.Equal(t, BottleneckStats{Enqueued: 6, EnqueuedBytes: 6000, MaxQueueDelay: 4 * time.Millisecond}, st)
}

func TestBottleneckTailDrop(t *testing.T) {
	tests := []struct {
		name     string
		cfg      BottleneckConfig
		accepted uint64
	}{
		// Waits of 0..20 ms are accepted: 21 packets.
		{"by time", BottleneckConfig{Rate: 8_000_000, QueueDelay: 20 * time.Millisecond}, 21},
		{"by bytes", BottleneckConfig{Rate: 8_000_000, QueueBytes: 7500}, 7},
		{"unbounded", BottleneckConfig{Rate: 8_000_000}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBottleneck(tt.cfg, t0)
			for range 100 {
				b.Enqueue(t0, 1000)
			}
			st := b.Stats()
			require.Equal(t, tt.accepted, st.Enqueued)
			require.Equal(t, 100-tt.accepted, st.Dropped)
			require.Equal(t, (100-tt.accepted)*1000, st.DroppedBytes)
			if tt.cfg.QueueDelay > 0 {
				require.LessOrEqual(t, st.MaxQueueDelay, tt.cfg.QueueDelay)
			}
		})
	}
}

// TestBottleneckSchedule steps 8 -> 2 -> 8 Mbit/s and checks that a packet
// whose transmission straddles a step is sent at each rate for its part.
func TestBottleneckSchedule(t *testing.T) {
	b := NewBottleneck(BottleneckConfig{Rate: 8_000_000, Schedule: []RateStep{
		{At: 100 * time.Millisecond, Rate: 2_000_000},
		{At: 200 * time.Millisecond, Rate: 8_000_000},
	}}, t0)
	require.Equal(t, int64(8_000_000), b.Rate(t0.Add(99*time.Millisecond)))
	require.Equal(t, int64(2_000_000), b.Rate(t0.Add(100*time.Millisecond)))
	require.Equal(t, int64(8_000_000), b.Rate(t0.Add(time.Hour)))

	// 1000 bytes starting 0.5 ms before the step: 500 bytes at 8 Mbit/s,
	// then 500 bytes at 2 Mbit/s (2 ms).
	at, _, ok := b.Enqueue(t0.Add(99500*time.Microsecond), 1000)
	require.True(t, ok)
	require.Equal(t, t0.Add(102*time.Millisecond), at)
	// At 2 Mbit/s a 1000-byte packet takes 4 ms.
	at, _, _ = b.Enqueue(t0.Add(150*time.Millisecond), 1000)
	require.Equal(t, t0.Add(154*time.Millisecond), at)
	// Back at 8 Mbit/s.
	at, _, _ = b.Enqueue(t0.Add(300*time.Millisecond), 1000)
	require.Equal(t, t0.Add(301*time.Millisecond), at)
}

// TestBottleneckStep20To5 is issue 14's reaction scenario on the pure
// model: 20 Mbit/s with a 50 ms queue, a step to 5 Mbit/s at 1 s and back
// at 2 s, offered a steady 10 Mbit/s (1250-byte packets every 1 ms). At
// 20 Mbit/s nothing queues; at 5 Mbit/s the queue fills to its 50 ms limit
// and half the packets are dropped; back at 20 Mbit/s it drains within
// 100 ms and nothing queues again.
func TestBottleneckStep20To5(t *testing.T) {
	b := NewBottleneck(BottleneckConfig{Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Schedule: []RateStep{
		{At: time.Second, Rate: 5_000_000},
		{At: 2 * time.Second, Rate: 20_000_000},
	}}, t0)
	type phase struct {
		maxWait       time.Duration
		sent, dropped int
	}
	var phases [3]phase
	var drainedAt time.Duration
	for ms := range 3000 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		p := &phases[ms/1000]
		_, wait, ok := b.Enqueue(now, 1250)
		p.sent++
		if !ok {
			p.dropped++
			continue
		}
		p.maxWait = max(p.maxWait, wait)
		if ms >= 2000 && drainedAt == 0 && wait == 0 {
			drainedAt = time.Duration(ms-2000) * time.Millisecond
		}
	}
	require.Zero(t, phases[0].maxWait, "20 Mbit/s: no queue")
	require.Zero(t, phases[0].dropped)
	require.InDelta(t, 50*time.Millisecond, phases[1].maxWait, float64(2*time.Millisecond), "5 Mbit/s: the queue reaches its limit")
	require.InDelta(t, 0.5, float64(phases[1].dropped)/float64(phases[1].sent), 0.05, "5 Mbit/s: half of 10 Mbit/s is dropped")
	require.Positive(t, drainedAt, "the queue is still full at the step back")
	require.Less(t, drainedAt, 100*time.Millisecond, "20 Mbit/s again: the 50 ms queue drains at twice the offered rate")
	require.Zero(t, phases[2].dropped)
	require.Equal(t, int64(5_000_000), b.Rate(t0.Add(1500*time.Millisecond)))
}

// TestBottleneckConn runs a burst through a BottleneckConn on a Network
// under synctest: the 12-byte test packets take 1 ms each at 96 kbit/s, the
// 20 ms queue holds 21 of the 100, and arrivals are 1 ms apart after the
// 10 ms propagation delay.
func TestBottleneckConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNetwork(t, 1, 0)
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		bc := NewBottleneckConn(a, BottleneckConfig{Rate: 96_000, QueueDelay: 20 * time.Millisecond, Delay: 10 * time.Millisecond})
		start := time.Now()
		sendSeq(t, bc, b.LocalAddr(), 100, 0)
		got := drain(t, b, time.Second)
		require.Len(t, got, 21)
		for i, r := range got {
			require.Equal(t, uint32(i), r.seq, "FIFO order")
			require.Equal(t, start.Add(time.Duration(i+1)*time.Millisecond+10*time.Millisecond), r.at)
		}
		st := bc.Stats()
		require.Equal(t, uint64(21), st.Enqueued)
		require.Equal(t, uint64(79), st.Dropped)
		require.Equal(t, 20*time.Millisecond, st.MaxQueueDelay)
		require.Zero(t, bc.QueueDelay())

		// Paced below the rate, nothing queues or drops.
		sendSeq(t, bc, b.LocalAddr(), 50, 2*time.Millisecond)
		require.Len(t, drain(t, b, time.Second), 50)
		require.Equal(t, uint64(79), bc.Stats().Dropped)

		require.NoError(t, bc.Close())
		require.NoError(t, bc.Close())
		_, err := bc.WriteTo([]byte{1}, b.LocalAddr())
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

// TestBottleneckConnSchedule steps the rate from 96 to 48 kbit/s 50 ms in
// under synctest: the 12-byte test packets, sent 4 ms apart, arrive 1 ms
// after they are sent before the step and 2 ms after it.
func TestBottleneckConnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNetwork(t, 1, 0)
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		bc := NewBottleneckConn(a, BottleneckConfig{Rate: 96_000, Schedule: []RateStep{{At: 50 * time.Millisecond, Rate: 48_000}}})
		got := sendAndCollect(t, bc, b, 25, 4*time.Millisecond)
		require.Len(t, got, 25)
		for _, r := range got {
			want := time.Millisecond
			if r.sent.Sub(got[0].sent) >= 50*time.Millisecond {
				want = 2 * time.Millisecond
			}
			require.Equal(t, want, r.at.Sub(r.sent), "packet %d", r.seq)
		}
		require.Zero(t, bc.Stats().Dropped)
	})
}
