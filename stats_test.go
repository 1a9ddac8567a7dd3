package uxp

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int
	}{
		{"negative clamps to first", -time.Second, 0},
		{"zero", 0, 0},
		{"on first bound", time.Millisecond, 0},
		{"just above first bound", time.Millisecond + 1, 1},
		{"on 100ms bound", 100 * time.Millisecond, 14},
		{"on last bound", 5 * time.Second, len(latencyBounds) - 1},
		{"beyond last bound", time.Minute, len(latencyBounds)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogramCounters
			h.observe(tt.d)
			s := h.snapshot()
			require.EqualValues(t, 1, s.Count)
			require.EqualValues(t, 1, s.Counts[tt.want], "bucket of %v", tt.d)
			require.Equal(t, max(tt.d, 0), s.Sum)
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h histogramCounters
	require.Zero(t, h.snapshot().Quantile(0.5), "no samples")
	for range 90 {
		h.observe(3 * time.Millisecond) // bucket (2ms, 3ms]
	}
	for range 10 {
		h.observe(150 * time.Millisecond) // bucket (100ms, 150ms]
	}
	s := h.snapshot()
	require.EqualValues(t, 100, s.Count)
	require.Equal(t, (90*3*time.Millisecond+10*150*time.Millisecond)/100, s.Mean())
	p50 := s.Quantile(0.5)
	require.True(t, p50 > 2*time.Millisecond && p50 <= 3*time.Millisecond, "p50 %v", p50)
	p99 := s.Quantile(0.99)
	require.True(t, p99 > 100*time.Millisecond && p99 <= 150*time.Millisecond, "p99 %v", p99)
	require.Equal(t, 150*time.Millisecond, s.Quantile(1))
	require.Equal(t, 2*time.Millisecond, s.Quantile(0), "p0 is the first used bucket's lower bound")

	var all Histogram
	all.add(s)
	all.add(s)
	require.EqualValues(t, 200, all.Count)
	require.EqualValues(t, 180, all.Counts[bucketOf(3*time.Millisecond)])
	require.Len(t, LatencyBounds(), HistogramBuckets-1)
}

// TestDeliveryLatency checks the histogram against a link whose one-way
// delay is known: 20 ms each way and no loss gives 20 ms per message; with
// 10% loss some messages wait for retransmissions. The server's histogram
// (it echoes) is merged into ServerStats.
func TestDeliveryLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 3, nil, nil, false)
		p.srvH.newConn = func() *recordConn { r := newRecordConn(); r.echo = true; return r }
		p.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		require.NoError(t, p.cli.Start(context.Background()))
		conn := p.cli.Conn()
		time.Sleep(100 * time.Millisecond) // first heartbeat RTT
		const n = 50
		for i := range n {
			writeRetry(t, conn, testMessage(i, 100))
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		lat := conn.Stats().Latency
		require.EqualValues(t, n, lat.Count, "every message sampled")
		require.Equal(t, 20*time.Millisecond, lat.Mean(), "one-way delay of the link")
		require.EqualValues(t, n, lat.Counts[bucketOf(20*time.Millisecond)])

		srv := p.srv.Stats().Latency
		require.EqualValues(t, n, srv.Count, "the echoes are sampled on the server")
		require.Equal(t, 20*time.Millisecond, srv.Mean())

		p.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond, Loss: 0.1})
		for i := range 200 {
			writeRetry(t, conn, testMessage(n+i, 100))
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		lossy := conn.Stats().Latency
		require.EqualValues(t, n+200, lossy.Count)
		require.Greater(t, lossy.Quantile(0.99), 50*time.Millisecond, "lost messages wait for a retransmission")
		require.Greater(t, lossy.Counts[bucketOf(20*time.Millisecond)], lossy.Count/2, "most messages still take the link's 20 ms")
		t.Logf("lossy: mean %v p50 %v p99 %v", lossy.Mean(), lossy.Quantile(0.5), lossy.Quantile(0.99))

		// A closed session's samples stay in the server's total, once.
		before := p.srv.Stats().Latency
		require.NoError(t, p.cli.Close())
		waitFor(t, func() bool { _, cc, _ := p.srvH.counts(); return cc == 1 })
		require.Equal(t, before, p.srv.Stats().Latency)
		require.EqualValues(t, n+200, before.Count)
	})
}

func TestRangeConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 4, nil, nil, true)
		waitFor(t, func() bool { c, _, _ := p.srvH.counts(); return c == 1 })
		var got []*Conn
		p.srv.RangeConns(func(c *Conn) bool { got = append(got, c); return true })
		require.Len(t, got, 1)
		require.Equal(t, p.cli.Conn().ID(), got[0].ID())
		calls := 0
		p.srv.RangeConns(func(c *Conn) bool { calls++; return false })
		require.Equal(t, 1, calls)

		require.NoError(t, p.cli.Close())
		waitFor(t, func() bool { _, cc, _ := p.srvH.counts(); return cc == 1 })
		calls = 0
		p.srv.RangeConns(func(*Conn) bool { calls++; return true })
		require.Zero(t, calls, "a closed session is no longer listed")
	})
}

// waitFor polls cond in virtual time, failing after a minute.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		require.True(t, time.Now().Before(deadline), "condition not met in time")
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRateLimitedDrops: initiations refused by the per-source rate limit
// are counted in DropStats.RateLimited as well as in HandshakeStats.
func TestRateLimitedDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := netsim.NewNetwork(8)
		defer n.Close()
		kp := testKeys(t)
		pc, err := n.Listen("10.0.0.1:4000")
		require.NoError(t, err)
		srv, err := NewServer(pc, nil, &Config{PrivateKey: kp.Private})
		require.NoError(t, err)
		defer srv.Close()
		from := netip.MustParseAddrPort("10.0.0.9:5000")
		encKey := labelKey(cookieLabel, kp.Public)
		now := time.Now()
		const tries = handshakeBurst + 20 // beyond the per-source burst allowance
		for range tries {
			init := append([]byte(nil), testInitiation(t, kp.Public, clientIdentity{}).initiation()...)
			reply, err := srv.cookies.Reply(init, from, now)
			require.NoError(t, err)
			cookie, err := openCookieReply(reply[:], init, &encKey)
			require.NoError(t, err)
			putMAC2(init, &cookie)
			srv.handleInitiation(init, from, now, true)
		}
		st := srv.Stats()
		require.Positive(t, st.Drops.RateLimited, "a burst from one source beyond the limit")
		require.Less(t, st.Drops.RateLimited, uint64(tries), "the burst allowance got through")
		require.Equal(t, st.Handshake.RateLimited, st.Drops.RateLimited)
	})
}
