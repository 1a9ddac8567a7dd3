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
