package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHeartbeatSkipsPingWhenBusy: a confirmed session that sent and heard
// a packet within the last interval skips its ping, at most
// maxSkippedPings times in a row; an idle one, or one that hears nothing,
// pings on time; an unconfirmed client always pings.
func TestHeartbeatSkipsPingWhenBusy(t *testing.T) {
	const iv = 3 * time.Second
	t0 := time.Unix(1000, 0)
	h := newHeartbeat(iv, 10*time.Second, true, t0)
	require.True(t, h.pingDue(t0), "the first ping confirms the keys")
	h.sent(t0)
	// Unconfirmed: traffic does not replace the confirming ping.
	h.received(t0.Add(100 * time.Millisecond))
	require.True(t, h.pingDue(t0.Add(confirmInterval)))
	h.pong(t0.Add(confirmInterval), t0.Add(confirmInterval+time.Millisecond))

	// Busy: both directions carry traffic every second.
	now := t0.Add(confirmInterval)
	pings := 0
	for range 60 {
		now = now.Add(time.Second)
		h.sent(now)
		h.received(now)
		if h.pingDue(now) {
			pings++
		}
	}
	require.Equal(t, 5, pings, "one ping in every %d intervals over a busy minute", maxSkippedPings+1)

	// Only sending, nothing heard: ping every interval.
	pings = 0
	for range 9 {
		now = now.Add(time.Second)
		h.sent(now)
		if h.pingDue(now) {
			pings++
		}
	}
	require.Equal(t, 3, pings)

	// Idle: ping every interval.
	pings = 0
	for range 9 {
		now = now.Add(time.Second)
		if h.pingDue(now) {
			pings++
		}
	}
	require.Equal(t, 3, pings)
}
