package cc

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"full", Config{MSS: 1200, InitialWindow: 4, InitialRate: 1e6, MinBandwidth: 1e5, MaxBandwidth: 1e7, Seed: 9}, true},
		{"negative MSS", Config{MSS: -1}, false},
		{"negative window", Config{InitialWindow: -1}, false},
		{"negative rate", Config{InitialRate: -1}, false},
		{"NaN rate", Config{InitialRate: Bandwidth(math.NaN())}, false},
		{"negative floor", Config{MinBandwidth: -1}, false},
		{"infinite floor", Config{MinBandwidth: Unlimited}, false},
		{"cap below floor", Config{MinBandwidth: 10, MaxBandwidth: 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
				for _, a := range []Algorithm{BBR, Cubic, None} {
					c, err := New(a, tt.cfg)
					require.NoError(t, err)
					require.Equal(t, string(a), c.Stats().Algorithm)
				}
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = New(BBR, tt.cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
	_, err := New("vegas", Config{})
	require.ErrorIs(t, err, ErrUnknownAlgorithm)
	require.ErrorContains(t, err, "vegas")
}

func TestBandwidth(t *testing.T) {
	b := BitsPerSecond(8e6)
	require.Equal(t, Bandwidth(1e6), b)
	require.Equal(t, 8e6, b.BitsPerSecond())
	require.Equal(t, 1000, b.BytesIn(time.Millisecond))
	require.Equal(t, 0, b.BytesIn(-time.Second))
	require.Equal(t, time.Millisecond, b.TimeFor(1000))
	require.Zero(t, Unlimited.TimeFor(1000))
	require.Equal(t, math.MaxInt/2, Unlimited.BytesIn(time.Second))
}

// TestSampler sends ten 1000-byte packets 1 ms apart and acknowledges each
// 40 ms after it was sent: the delivery rate is 1 MB/s and the RTT 40 ms.
func TestSampler(t *testing.T) {
	var s sampler
	var sent []PacketState
	inflight := 0
	for i := range 10 {
		sent = append(sent, s.onSent(t0.Add(time.Duration(i)*time.Millisecond), 1000, inflight))
		inflight += 1000
	}
	require.Equal(t, 1000, sent[0].Inflight)
	require.Equal(t, 10000, sent[9].Inflight)
	var rs rateSample
	for i, p := range sent {
		rs = s.onAck(p.SentTime.Add(40*time.Millisecond), []PacketState{p}, nil, 0)
		require.Equal(t, 40*time.Millisecond, rs.rtt)
		if i == 0 {
			// The first ACK measures one packet over the 40 ms
			// since the pipe was empty.
			require.True(t, rs.ok)
			require.InDelta(t, 1000/0.040, float64(rs.rate), 1)
		}
	}
	require.True(t, rs.ok)
	// All ten were sent before the first ACK, so the last sample spans
	// the whole flight: 10000 bytes from the first send (t0, when the
	// pipe was empty) to the last ACK at 49 ms.
	require.Equal(t, int64(10000), rs.delivered)
	require.Equal(t, 49*time.Millisecond, rs.interval)
	require.InDelta(t, 10000/0.049, float64(rs.rate), 1)
	require.Equal(t, int64(10000), s.delivered)

	// An interval shorter than the minimum RTT is rejected.
	p := s.onSent(t0.Add(time.Second), 1000, 0)
	rs = s.onAck(t0.Add(time.Second+time.Millisecond), []PacketState{p}, nil, 40*time.Millisecond)
	require.False(t, rs.ok)

	// App-limited marking lasts until the bubble is delivered.
	s.onAppLimited(0)
	p = s.onSent(t0.Add(2*time.Second), 1000, 0)
	require.True(t, p.AppLimited)
	rs = s.onAck(t0.Add(2*time.Second+40*time.Millisecond), []PacketState{p}, []PacketState{{Bytes: 500, Inflight: 7}}, 0)
	require.True(t, rs.appLimited)
	require.Zero(t, s.appLimitedUntil)
	require.Equal(t, 500, rs.lostBytes)
	require.Equal(t, 7, rs.maxLostTx)
	require.Equal(t, int64(500), s.lost)
}

func TestNoneController(t *testing.T) {
	n := NewNone(Config{})
	require.True(t, n.CanSend(math.MaxInt))
	require.Equal(t, Unlimited, n.PacingRate())
	p := n.OnPacketSent(t0, 1000, 0)
	n.OnAck(t0.Add(10*time.Millisecond), AckEvent{Acked: []PacketState{p}})
	st := n.Stats()
	require.Equal(t, "unlimited", st.State)
	require.Equal(t, 10*time.Millisecond, st.MinRTT)
	require.Equal(t, int64(1000), st.Delivered)
	n.OnLoss(t0, []PacketState{{Bytes: 10}}, 0)
	require.Equal(t, int64(10), n.Stats().Lost)

	capped := NewNone(Config{MaxBandwidth: 1e6})
	require.Equal(t, Bandwidth(1e6), capped.PacingRate())
}

// TestCubicLossResponse checks slow start, one multiplicative decrease
// (beta 0.7) per loss event, and growth after recovery.
func TestCubicLossResponse(t *testing.T) {
	c := NewCubic(Config{MSS: 1000, InitialWindow: 10})
	require.Equal(t, 10000, c.CongestionWindow())
	require.Equal(t, "slow_start", c.Stats().State)
	now := t0
	inflight := 0
	var pkts []PacketState
	for range 10 {
		pkts = append(pkts, c.OnPacketSent(now, 1000, inflight))
		inflight += 1000
	}
	now = now.Add(50 * time.Millisecond)
	for _, p := range pkts[:5] {
		inflight -= 1000
		c.OnAck(now, AckEvent{Acked: []PacketState{p}, Inflight: inflight})
	}
	require.Equal(t, 15000, c.CongestionWindow(), "slow start adds acked bytes")
	// Two losses of the same flight: one reduction.
	c.OnAck(now, AckEvent{Lost: pkts[5:7], Inflight: inflight - 2000})
	require.Equal(t, 10500, c.CongestionWindow())
	require.Equal(t, "recovery", c.Stats().State)
	c.OnLoss(now.Add(time.Millisecond), pkts[7:8], 0)
	require.Equal(t, 10500, c.CongestionWindow(), "a loss from before the reduction is the same event")
	// A packet sent after the reduction ends recovery and grows the
	// window (congestion avoidance now: cwnd >= ssthresh).
	p := c.OnPacketSent(now.Add(2*time.Millisecond), 1000, 0)
	c.OnAck(now.Add(60*time.Millisecond), AckEvent{Acked: []PacketState{p}})
	require.Equal(t, "congestion_avoidance", c.Stats().State)
	require.Greater(t, c.CongestionWindow(), 10500)
	// A new loss event reduces again.
	q := c.OnPacketSent(now.Add(70*time.Millisecond), 1000, 0)
	before := c.CongestionWindow()
	c.OnLoss(now.Add(200*time.Millisecond), []PacketState{q}, 0)
	require.InDelta(t, float64(before)*cubicBeta, float64(c.CongestionWindow()), 1)
	require.Greater(t, float64(c.PacingRate()), 0.0)
}

// TestBBRStartup checks the initial state and that ACKs grow the window in
// Startup.
func TestBBRStartup(t *testing.T) {
	b := NewBBR(Config{MSS: 1000})
	st := b.Stats()
	require.Equal(t, "startup", st.State)
	require.Equal(t, 10000, st.CongestionWindow)
	// Before any RTT sample: the initial window per ms times 2.77.
	require.InDelta(t, 2.77*10000/0.001, float64(st.PacingRate), 1)
	require.True(t, b.CanSend(9999))
	require.False(t, b.CanSend(10000))
	var pkts []PacketState
	for i := range 10 {
		pkts = append(pkts, b.OnPacketSent(t0, 1000, i*1000))
	}
	b.OnAck(t0.Add(20*time.Millisecond), AckEvent{Acked: pkts, Inflight: 0})
	st = b.Stats()
	require.Equal(t, 20000, st.CongestionWindow)
	require.Equal(t, 20*time.Millisecond, st.MinRTT)
	require.InDelta(t, 10000/0.020, float64(st.Bandwidth), 1)
	// The first RTT sample re-bases the initial rate on it (2.77 x the
	// initial window per 20 ms), which is above 2.77 x 0.99 x bw.
	require.InDelta(t, 2.77*10000/0.020, float64(st.PacingRate), 1)
	require.Equal(t, uint64(1), st.Rounds)

	withRate := NewBBR(Config{InitialRate: 12345})
	require.Equal(t, Bandwidth(12345), withRate.PacingRate())
}
