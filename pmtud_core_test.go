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
	p := newPMTU(1200, 1400, 1, now)
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
	pmtuRun(&p, &now, 1400, &retrans, time.Duration(float64(pmtuRaiseAfter)*(1+pmtuJitter))) // the timer's longest spread
	require.Equal(t, 1400, p.cur)

	// Stale and forged acks are ignored.
	q := newPMTU(1200, 1400, 1, now)
	size, id, _ := q.tick(now, 0, time.Second)
	require.Equal(t, 1400, size)
	require.False(t, q.ack(id+1, size, now))
	require.False(t, q.ack(id, size-1, now))
	require.True(t, q.ack(id, size, now))
	require.False(t, q.ack(id, size, now), "only once")

	// Nothing to search when the maximum is the base or below.
	r := newPMTU(1200, 1000, 1, now)
	require.Equal(t, 1000, r.cur)
	require.True(t, r.deadline().IsZero())
}

// TestPMTUSpread: sessions that finished their search at the same instant
// confirm their size spread over [pmtuConfirmEvery, (1+pmtuJitter) x
// pmtuConfirmEvery), not in one burst, and never sooner than
// pmtuConfirmEvery apart.
func TestPMTUSpread(t *testing.T) {
	start := time.Unix(1000, 0)
	const n = 1000
	var buckets [10]int // tenths of the spread window
	for id := range uint32(n) {
		now := start
		var retrans uint64
		p := newPMTU(1200, 1400, id*2654435761, now)
		pmtuRun(&p, &now, 1400, &retrans, time.Second)
		require.Equal(t, 1400, p.cur)
		d := p.deadline().Sub(start)
		require.GreaterOrEqual(t, d, pmtuConfirmEvery)
		require.Less(t, d, time.Duration(float64(pmtuConfirmEvery)*(1+pmtuJitter))+time.Second)
		buckets[min(9, int((d-pmtuConfirmEvery)*10/time.Duration(float64(pmtuConfirmEvery)*pmtuJitter)))]++
	}
	for i, b := range buckets {
		require.InDelta(t, n/10, b, n/20, "tenth %d of the window: %v", i, buckets)
	}
}

// TestPMTUOverload: while the worker is behind no probe goes out, a due
// confirmation waits until it has caught up, and retransmissions during
// the overload (the worker's own drops) do not start a black-hole check.
func TestPMTUOverload(t *testing.T) {
	now := time.Unix(1000, 0)
	var retrans uint64
	p := newPMTU(1200, 1400, 7, now)
	pmtuRun(&p, &now, 1400, &retrans, time.Second)
	require.Equal(t, 1400, p.cur)

	// The confirmation comes due while the worker is behind: postponed,
	// again and again, for as long as it is.
	now = p.deadline()
	end := now.Add(5 * time.Second)
	for now.Before(end) {
		retrans += 3 // ACKs lost to the overload: retransmissions rise
		p.overloaded(now, retrans)
		require.True(t, p.deadline().After(now), "no deadline in the past while behind")
		now = p.deadline()
	}
	// Caught up: the postponed confirmation goes out, once, as a
	// confirmation (not a search), and is acknowledged; the
	// retransmissions of the overload start nothing more.
	probed := pmtuRun(&p, &now, 1400, &retrans, 10*time.Second)
	require.Equal(t, []int{1400}, probed)
	require.Equal(t, 1400, p.cur)
	require.False(t, p.searching)

	// After the quiet period a rise in retransmissions is a loss again.
	now = now.Add(pmtuOverloadQuiet)
	retrans++
	size, _, _ := p.tick(now, retrans, 100*time.Millisecond)
	require.Equal(t, 1400, size, "a loss after the overload confirms the size")
}
