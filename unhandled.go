package uxp

import (
	"fmt"
	"sync/atomic"
)

// Events that reached a session whose handler has no method for them. A
// handler's optional interfaces (DatagramHandler, LaneHandler,
// WritableHandler) are found by type assertion, so a misspelled method
// compiles and its events vanish. These counters, and a warning logged
// once per session, make that visible.

// UnhandledStats counts messages that arrived for a handler without the
// method that takes them.
type UnhandledStats struct {
	// Datagrams counts datagrams discarded because the session's handler
	// does not implement DatagramHandler. They are also counted in
	// DatagramStats.Received.
	Datagrams uint64
	// LaneMessages counts messages on lanes other than 0 delivered to
	// OnNewDataComing, without their lane number, because the handler does
	// not implement LaneHandler.
	LaneMessages uint64
}

type unhandledCounters struct{ dgrams, lanes atomic.Uint64 }

func (u *unhandledCounters) snapshot() UnhandledStats {
	return UnhandledStats{Datagrams: u.dgrams.Load(), LaneMessages: u.lanes.Load()}
}

// Unhandled returns the session's counts of messages its handler had no
// method for. Safe from any goroutine.
func (c *Conn) Unhandled() UnhandledStats {
	return UnhandledStats{Datagrams: c.ext.unhandledDgrams.Load(), LaneMessages: c.ext.unhandledLanes.Load()}
}

// noteUnhandled counts one unhandled message, on the session and its
// endpoint, and logs a warning the first time per session. Runs on the
// shard. A NopHandler (no handler set yet) is counted but not warned
// about: dropping events is what it is for.
func (c *Conn) noteUnhandled(h ConnHandler, datagram bool, lane int) {
	if datagram {
		c.ext.unhandledDgrams.Add(1)
		c.ep.unhandled.dgrams.Add(1)
	} else {
		c.ext.unhandledLanes.Add(1)
		c.ep.unhandled.lanes.Add(1)
	}
	if _, nop := h.(NopHandler); nop || c.ext.warnedUnhandled.Swap(true) {
		return
	}
	if datagram {
		c.ep.log.Warn("uxp: datagram discarded: the session's handler does not implement DatagramHandler (OnNewDatagramComing); check with var _ uxp.DatagramHandler = (*T)(nil)",
			"session", c.id, "handler", fmt.Sprintf("%T", h))
	} else {
		c.ep.log.Warn("uxp: lane message delivered to OnNewDataComing without its lane: the session's handler does not implement LaneHandler (OnNewLaneDataComing); check with var _ uxp.LaneHandler = (*T)(nil)",
			"session", c.id, "lane", lane, "handler", fmt.Sprintf("%T", h))
	}
}
