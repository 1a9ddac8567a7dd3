package main

import "github.com/uxp-go/uxp"

// timerStats reads the counters issue 18 added to uxp.ServerStats (kept
// apart so that the soak can be built against an older uxp for a
// baseline, with this file returning zeros).
func timerStats(st uxp.ServerStats) (events, flushes, rekeysDeferred uint64, held int) {
	return st.TimerEvents, st.TimerFlushes, st.RekeysDeferred, st.HeldBytes
}
