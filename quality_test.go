package uxp

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestQuality: over a link with 40 ms of delay and 5 % loss, Quality
// reports the RTT, rates that match the traffic, the loss, and what each
// lane holds; reading it allocates nothing.
func TestQuality(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Lanes: []LaneConfig{{}, {}}, HeartbeatInterval: 200 * time.Millisecond}
		n := newSimServer(t, 7, &connCollector{}, cfg, cfg) // both sides need the same lanes (negotiate.go)
		n.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond, Loss: 0.05})
		c := n.dial(t, 0, nil).Conn()
		require.Zero(t, c.Quality().OutBytesPerSec, "no rate before an interval passed")

		// 50 messages of 500 B per second for 4 s.
		for range 200 {
			_, err := c.Write(make([]byte, 500))
			require.NoError(t, err)
			time.Sleep(20 * time.Millisecond)
			c.Quality() // read every tick, as a game loop would
		}
		q := c.Quality()
		require.InDelta(t, 40*time.Millisecond, q.RTT, float64(15*time.Millisecond))
		require.Greater(t, q.OutBytesPerSec, 50*500.0*0.9, "payload plus headers")
		require.Less(t, q.OutBytesPerSec, 50*500.0*1.5)
		require.Greater(t, q.OutPacketsPerSec, 40.0)
		require.Positive(t, q.InPacketsPerSec, "ACKs and pongs")
		require.InDelta(t, 0.05, q.LossIn, 0.1, "5%% loss, measured over ~25 packets")

		// Hold data on lane 1: the peer stops acknowledging.
		n.net.SetDefault(netsim.Impairment{Loss: 1})
		_, err := c.WriteLane(1, make([]byte, 3000))
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
		q = c.Quality()
		require.Equal(t, 3000, q.LanePending[1])
		require.GreaterOrEqual(t, q.PendingBytes, 3000)
		time.Sleep(time.Second)
		q = c.Quality()
		require.Positive(t, q.QueueTime, "pending bytes at the measured rate")

		if !raceEnabled {
			require.Zero(t, testing.AllocsPerRun(100, func() { _ = c.Quality() }))
		}
	})
}
