package replay

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// step is one call in a scripted test: Accept(counter) must return want.
type step struct {
	counter uint64
	want    bool
}

// tLim is the first counter past the window of a fresh Window after 0; it is
// T_LIM in wireguard-go's and Linux's replay tests.
const tLim = WindowSize + 1

// wireguardSteps are the 34 numbered cases of wireguard-go's
// replay/replay_test.go (ported there from the Linux kernel), with
// RejectAfter as the limit.
var wireguardSteps = []step{
	{0, true},                    // 1
	{1, true},                    // 2
	{1, false},                   // 3
	{9, true},                    // 4
	{8, true},                    // 5
	{7, true},                    // 6
	{7, false},                   // 7
	{tLim, true},                 // 8
	{tLim - 1, true},             // 9
	{tLim - 1, false},            // 10
	{tLim - 2, true},             // 11
	{2, true},                    // 12
	{2, false},                   // 13
	{tLim + 16, true},            // 14
	{3, false},                   // 15
	{tLim + 16, false},           // 16
	{tLim * 4, true},             // 17
	{tLim*4 - (tLim - 1), true},  // 18
	{10, false},                  // 19
	{tLim*4 - tLim, false},       // 20
	{tLim*4 - (tLim + 1), false}, // 21
	{tLim*4 - (tLim - 2), true},  // 22
	{tLim*4 + 1 - tLim, false},   // 23
	{0, false},                   // 24
	{RejectAfter, false},         // 25
	{RejectAfter - 1, true},      // 26
	{RejectAfter, false},         // 27
	{RejectAfter - 1, false},     // 28
	{RejectAfter - 2, true},      // 29
	{RejectAfter + 1, false},     // 30
	{RejectAfter + 2, false},     // 31
	{RejectAfter - 2, false},     // 32
	{RejectAfter - 3, true},      // 33
	{0, false},                   // 34
}

// run returns n steps counting from from by delta, all expecting want.
func run(from uint64, n int, delta int64, want bool) []step {
	steps := make([]step, n)
	for i := range steps {
		steps[i] = step{from + uint64(int64(i)*delta), want}
	}
	return steps
}

func concat(parts ...[]step) []step {
	var all []step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestWindow(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"wireguard", wireguardSteps},
		// wireguard-go's bulk tests.
		{"bulk1-forward-then-0", concat(run(1, WindowSize, 1, true), []step{{0, true}, {0, false}})},
		{"bulk2-forward-then-1", concat(run(2, WindowSize, 1, true), []step{{1, true}, {0, false}})},
		{"bulk3-backward", run(WindowSize+1, WindowSize+1, -1, true)},
		{"bulk4-backward-then-0", concat(run(WindowSize+2, WindowSize+1, -1, true), []step{{0, false}})},
		{"bulk5-backward-then-ahead", concat(run(WindowSize, WindowSize, -1, true), []step{{WindowSize + 1, true}, {0, false}})},
		{"bulk6-backward-0-ahead", concat(run(WindowSize, WindowSize, -1, true), []step{{0, true}, {WindowSize + 1, true}})},
		// Our own edge cases.
		{"zero-value-accepts-0-once", []step{{0, true}, {0, false}}},
		{"first-counter-not-0", []step{{5, true}, {0, true}, {5, false}, {0, false}}},
		{"window-edge", []step{
			{100000, true},
			{100000 - WindowSize, true},      // oldest in the window
			{100000 - WindowSize - 1, false}, // just outside
			{100000 - WindowSize, false},     // duplicate at the edge
		}},
		{"same-block-forward", []step{{64, true}, {127, true}, {65, true}, {127, false}, {126, true}}},
		{"jump-whole-ring-clears", concat(
			run(0, 200, 1, true),
			[]step{{200 + 128*64, true}, {200 + 128*64 - 1, true}, {199, false}, {200 + 2*64, true}},
		)},
		{"huge-jump", []step{{1, true}, {1 << 62, true}, {1, false}, {1<<62 - 1, true}, {1 << 62, false}}},
		{"reject-after", []step{{RejectAfter, false}, {^uint64(0), false}, {RejectAfter - 1, true}, {RejectAfter - 1, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			for i, s := range tt.steps {
				require.Equal(t, s.want, w.Check(s.counter), "step %d: Check(%d)", i+1, s.counter)
				require.Equal(t, s.want, w.Accept(s.counter), "step %d: Accept(%d)", i+1, s.counter)
				require.False(t, w.Check(s.counter), "step %d: Check(%d) after Accept", i+1, s.counter)
			}
		})
	}
}

func TestCheckDoesNotMutate(t *testing.T) {
	var w Window
	for _, c := range []uint64{10, 20, 15} {
		require.True(t, w.Accept(c))
	}
	before := w
	for _, c := range []uint64{0, 10, 11, 20, 21, 1 << 40, RejectAfter - 1, RejectAfter, ^uint64(0)} {
		w.Check(c)
		require.Equal(t, before, w, "Check(%d) changed the window", c)
	}
}

// TestForgedHugeCounter simulates a packet with a huge counter and a bad tag:
// it passes Check, fails authentication, and is never committed. Genuine
// packets must still be accepted afterwards.
func TestForgedHugeCounter(t *testing.T) {
	var w Window
	for c := range uint64(100) {
		require.True(t, w.Accept(c))
	}
	forged := uint64(RejectAfter - 1)
	require.True(t, w.Check(forged))
	// Decryption fails, so Accept is not called.
	require.Equal(t, uint64(99), w.Max())
	require.True(t, w.Check(100))
	require.True(t, w.Accept(100))
	require.True(t, w.Accept(50+WindowSize))
	require.False(t, w.Check(49), "now too old because of genuine traffic only")
}

func TestMax(t *testing.T) {
	var w Window
	require.Zero(t, w.Max())
	require.True(t, w.Accept(7))
	require.Equal(t, uint64(7), w.Max())
	require.True(t, w.Accept(3))
	require.Equal(t, uint64(7), w.Max(), "older counters do not lower Max")
	require.False(t, w.Accept(RejectAfter))
	require.Equal(t, uint64(7), w.Max(), "rejected counters do not raise Max")
}

func TestReset(t *testing.T) {
	var w Window
	for c := range uint64(3 * WindowSize) {
		require.True(t, w.Accept(c*3))
	}
	w.Reset()
	require.Equal(t, Window{}, w)
	require.Zero(t, w.Max())
	for _, c := range []uint64{0, 3, 6, 9} {
		require.True(t, w.Accept(c), "counter %d after Reset", c)
	}
}

func TestWindowSize(t *testing.T) {
	require.GreaterOrEqual(t, WindowSize, 2048)
	require.Equal(t, 8128, WindowSize)
	require.Equal(t, uint64(1<<64-1<<13-1), uint64(RejectAfter))
	for i, n := range []int{1, 2, 64, 65, 1000} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var w Window
			top := uint64(WindowSize + n)
			require.True(t, w.Accept(top))
			// Exactly WindowSize+1 counters (top-WindowSize .. top) fit.
			accepted := 0
			for c := range top {
				if w.Accept(c) {
					accepted++
				}
			}
			require.Equal(t, WindowSize, accepted)
		})
	}
}
