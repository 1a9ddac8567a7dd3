package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloseCounters: every close code has its own count, application
// codes count as "application", unknown reserved codes (a peer's) as
// "other", and a half-open session that expired
// unconfirmed is not counted.
func TestCloseCounters(t *testing.T) {
	var ep endpoint
	ep.noteClosed(nil, CloseNormal, true)
	ep.noteClosed(nil, CloseServerShutdown, true)
	ep.noteClosed(nil, CloseServerShutdown, true)
	ep.noteClosed(ErrServerFull, CloseServerFull, false)
	ep.noteClosed(nil, CloseNormal, false) // half-open expiry
	ep.noteClosed(ErrPeerClosed, 200, true)
	ep.noteClosed(ErrPeerClosed, CloseApplicationMin+7, true)
	ep.noteClosed(ErrPeerClosed, CloseAbandoned, true)
	got := map[string]uint64{}
	snap := ep.closes.snapshot()
	var names []string
	for _, c := range snap {
		got[c.Reason] = c.Count
		names = append(names, c.Reason)
	}
	require.Equal(t, CloseReasons(), names, "snapshot lists every reason, in CloseReasons order")
	require.Equal(t, map[string]uint64{"normal": 1, "shutdown": 2, "protocol": 0, "full": 1,
		"abandoned": 1, "idle_timeout": 0, "callback_panic": 0, "application": 1, "other": 1}, got)
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
