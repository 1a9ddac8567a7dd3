package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloseCounters: every close reason has its own count, unknown codes
// (a peer's) count as "other", and a half-open session that expired
// unconfirmed is not counted.
func TestCloseCounters(t *testing.T) {
	var ep endpoint
	ep.noteClosed(nil, closeNormal, true)
	ep.noteClosed(nil, closeShutdown, true)
	ep.noteClosed(nil, closeShutdown, true)
	ep.noteClosed(ErrServerFull, closeFull, false)
	ep.noteClosed(nil, closeNormal, false) // half-open expiry
	ep.noteClosed(ErrPeerClosed, 200, true)
	got := map[string]uint64{}
	snap := ep.closes.snapshot()
	var names []string
	for _, c := range snap {
		got[c.Reason] = c.Count
		names = append(names, c.Reason)
	}
	require.Equal(t, CloseReasons(), names, "snapshot lists every reason, in CloseReasons order")
	require.Equal(t, map[string]uint64{"normal": 1, "shutdown": 2, "protocol": 0, "full": 1, "other": 1}, got)
}

// TestRTTHistogram: sessions without an RTT sample are left out.
func TestRTTHistogram(t *testing.T) {
	var a, b, c Conn
	a.rtt.Store(int64(4 * time.Millisecond))
	b.rtt.Store(int64(40 * time.Millisecond))
	h := rttHistogram([]*Conn{&a, &b, &c})
	require.EqualValues(t, 2, h.Count)
	require.Equal(t, 44*time.Millisecond, h.Sum)
	require.EqualValues(t, 1, h.Counts[bucketOf(4*time.Millisecond)])
	require.EqualValues(t, 1, h.Counts[bucketOf(40*time.Millisecond)])
}
