package main

import "github.com/uxp-go/uxp"

// timerStats reads the worker timer counters of issue 18 (kept apart so
// that the soak can be built against an older uxp for a baseline, with
// this file returning zeros).
func timerStats(st uxp.ServerStats) (events, flushes, rekeysDeferred uint64) {
	return st.TimerEvents, st.TimerFlushes, st.RekeysDeferred
}
