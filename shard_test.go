package uxp

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTimerCoalescing checks the timer heap's keys: deadlines round up to
// timerCoalesce, never down, so sessions due in one slot share one wake
// and none runs early.
func TestTimerCoalescing(t *testing.T) {
	ep := &endpoint{epoch: time.Unix(1000, 0)}
	s := &shard{ep: ep}
	for _, off := range []time.Duration{0, 1, time.Microsecond, 999 * time.Microsecond, time.Millisecond, time.Millisecond + 1} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			k := s.key(ep.epoch.Add(off))
			require.GreaterOrEqual(t, k, int64(off))
			require.Less(t, k-int64(off), int64(timerCoalesce))
			require.Zero(t, k%int64(timerCoalesce))
		})
	}
}

// TestConnHeap runs random pushes, moves and removals against the timer
// heap and checks after each that it is a heap, that every session knows
// its slot, and that the minimum is right.
func TestConnHeap(t *testing.T) {
	ep, conns := newStagingEndpoint(t, 1, 200)
	s := ep.shards[0]
	rng := rand.New(rand.NewPCG(3, 4))
	base := ep.epoch
	check := func(step int) {
		h := s.timers
		for i, e := range h {
			if e.c.heapIndex != i {
				t.Fatalf("step %d: session %d at slot %d thinks it is at %d", step, e.c.id, i, e.c.heapIndex)
			}
			if e.at != s.key(e.c.deadline) {
				t.Fatalf("step %d: slot %d key %d, deadline key %d", step, i, e.at, s.key(e.c.deadline))
			}
			if i > 0 && h[(i-1)/2].at > e.at {
				t.Fatalf("step %d: slot %d is earlier than its parent", step, i)
			}
		}
		in := 0
		for _, c := range conns {
			if c.heapIndex >= 0 {
				in++
				if c.deadline.Before(h[0].c.deadline) {
					t.Fatalf("step %d: session %d is due before the root", step, c.id)
				}
			}
		}
		if in != len(h) {
			t.Fatalf("step %d: %d sessions claim a slot, heap has %d", step, in, len(h))
		}
	}
	for step := range 5000 {
		c := conns[rng.IntN(len(conns))]
		if rng.IntN(4) == 0 {
			c.deadline = time.Time{} // removal (or no-op when not in)
		} else {
			c.deadline = base.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		}
		s.schedule(c)
		check(step)
	}
	// runTimers fires every due session in deadline order.
	var fired []time.Time
	for len(s.timers) > 0 {
		c := s.timers[0].c
		fired = append(fired, c.deadline)
		c.deadline = time.Time{}
		s.schedule(c)
	}
	for i := 1; i < len(fired); i++ {
		if fired[i].Before(fired[i-1]) {
			t.Fatalf("popped %v after %v", fired[i], fired[i-1])
		}
	}
}
