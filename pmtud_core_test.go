package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pmtuPath drives a pmtuState against a path that carries packets up to
// limit bytes, answering probes at once. It returns the sizes probed.
func pmtuRun(p *pmtuState, now *time.Time, limit int, retrans *uint64, d time.Duration) (probed []int) {
	const timeout = 100 * time.Millisecond
	for end := now.Add(d); now.Before(end); {
		size, id, _ := p.tick(*now, *retrans, timeout)
		if size > 0 {
			probed = append(probed, size)
			if size <= limit {
				p.ack(id, size, *now)
				continue
			}
		}
		next := p.deadline()
		if next.IsZero() || next.After(end) {
			*now = end
			break
		}
		if next.After(*now) {
			*now = next
		}
	}
	return probed
}

// TestPMTUCore: the search probes the maximum first, then bisects to the
// byte; a black hole (the current size lost three times after
// retransmissions rose) falls back to the base and searches below; a path
// that grows is found again after the raise timer.
func TestPMTUCore(t *testing.T) {
	now := time.Unix(1000, 0)
	var retrans uint64
	p := newPMTU(1200, 1400, now)
	require.Equal(t, 1200, p.cur)

	probed := pmtuRun(&p, &now, 1280, &retrans, 10*time.Second)
	require.Equal(t, 1280, p.cur)
	require.False(t, p.searching)
	require.Equal(t, []int{1400, 1400, 1400}, probed[:3], "the maximum first, MAX_PROBES times")
	require.LessOrEqual(t, len(probed), 3+3*9, "a binary search: about log2(200) sizes")

	// Quiet: no probe until a confirmation or a loss.
	require.Empty(t, pmtuRun(&p, &now, 1280, &retrans, 20*time.Second))
	// The path shrinks; retransmissions rise: the current size is
	// confirmed, fails, and the session falls back and searches again.
	retrans = 10
	probed = pmtuRun(&p, &now, 1250, &retrans, 10*time.Second)
	require.Equal(t, []int{1280, 1280, 1280}, probed[:3], "confirmation of the current size")
	require.Equal(t, 1250, p.cur)
	require.NotContains(t, probed[3:], 1280, "the search stays below the size that failed")

	// The path grows back: found after the raise timer, not before.
	require.Empty(t, pmtuRun(&p, &now, 1400, &retrans, 20*time.Second))
	require.Equal(t, 1250, p.cur)
	pmtuRun(&p, &now, 1400, &retrans, pmtuRaiseAfter)
	require.Equal(t, 1400, p.cur)

	// Stale and forged acks are ignored.
	q := newPMTU(1200, 1400, now)
	size, id, _ := q.tick(now, 0, time.Second)
	require.Equal(t, 1400, size)
	require.False(t, q.ack(id+1, size, now))
	require.False(t, q.ack(id, size-1, now))
	require.True(t, q.ack(id, size, now))
	require.False(t, q.ack(id, size, now), "only once")

	// Nothing to search when the maximum is the base or below.
	r := newPMTU(1200, 1000, now)
	require.Equal(t, 1000, r.cur)
	require.True(t, r.deadline().IsZero())
}
