package uxp

import (
	"go/ast"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wallClockAllowed lists the files of this module that may convert to or
// from wall-clock time, and why (timebase.go).
var wallClockAllowed = map[string]string{
	"handshake.go": "the IK initiation's timestamp is Unix ns on the wire (docs/protocol.md section 4.2)",
}

// wallClockCalls are the conversions between time.Time and a wall-clock
// number: a deadline kept as one jumps when NTP steps the clock.
var wallClockCalls = map[string]bool{
	"Unix": true, "UnixNano": true, "UnixMilli": true, "UnixMicro": true,
}

// TestOneTimeBase: every package of this module (the session engine, the
// layers below it, the commands and samples; not the bench module) keeps
// local time monotonic; the only wall-clock conversions are those of
// wallClockAllowed.
func TestOneTimeBase(t *testing.T) {
	for _, g := range moduleFiles(t) {
		if _, ok := wallClockAllowed[g.path]; ok {
			continue
		}
		ast.Inspect(g.f, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok && wallClockCalls[s.Sel.Name] {
				t.Errorf("%s: %s converts to or from the wall clock (timebase.go: keep local time monotonic)",
					g.path, s.Sel.Name)
			}
			return true
		})
	}
}

// TestTimeBaseConversions: an expiry made at the API edge and turned back
// into an instant keeps the monotonic reading (so it is immune to a wall-
// clock step), round-trips exactly, and is never 0 ("no deadline").
func TestTimeBaseConversions(t *testing.T) {
	ep := &endpoint{epoch: time.Now()}
	x := ep.expiryIn(time.Second)
	require.Positive(t, x)
	at := ep.monoTime(x)
	require.Contains(t, at.String(), " m=+", "the instant carries the monotonic reading")
	require.Equal(t, x, ep.mono(at))
	require.InDelta(t, float64(time.Second), float64(time.Until(at)), float64(time.Second)/2)
	require.Positive(t, ep.monoNow())

	// At the epoch itself (synctest's frozen clock) the "never 0" values
	// stay distinct from "none".
	frozen := &endpoint{epoch: time.Now().Add(time.Hour)}
	require.Equal(t, int64(1), frozen.monoNow())
	require.Equal(t, int64(1), frozen.expiryIn(time.Nanosecond))
}
