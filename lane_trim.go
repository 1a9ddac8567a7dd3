package uxp

import (
	"time"

	"github.com/uxp-go/uxp/internal/kcpx"
)

// A lane whose KCP is idle (nothing to send, acknowledge or deliver) for
// kcpTrimDelay gets back to its baseline memory: internal/kcpx trims the
// KCP (Factory.Trim), and the lane drops its own inflight list, delivery
// tracker and scratch buffer if they grew. The delay keeps a session that
// sends bursts at a steady rate from shrinking and regrowing on every burst.

/* Implementation constants */
const (
	// kcpTrimDelay is how long a lane's KCP stays idle before the memory
	// it grew is given back.
	kcpTrimDelay = time.Second

	// kcpMinEntries is the capacity, in entries, past which the lane's
	// inflight list counts as grown.
	kcpMinEntries = kcpx.MinEntries

	// laneScratchKeep bounds the lane message scratch buffer a session
	// keeps while idle: a message larger than this leaves a buffer that
	// laneTrimDeadline drops.
	laneScratchKeep = 2048
)

// laneQuiet reports whether a lane has nothing in progress: no message
// waiting, in flight or being received, no ACK owed.
func (c *Conn) laneQuiet(l *lane) bool {
	return l.arq != nil && !l.ackPending && len(l.backlog) == 0 && len(l.inflight) == 0 &&
		c.shard.kcp.Quiet(l.arq)
}

// laneGrown reports whether a lane holds memory a quiet lane does without.
func (c *Conn) laneGrown(l *lane) bool {
	return c.shard.kcp.Grown(l.arq) || cap(l.inflight) > kcpMinEntries ||
		(len(l.lat.ring) > trackerMinSlots && l.lat.n == 0) || cap(c.laneScratch) > laneScratchKeep
}

// laneTrimDeadline runs the lane's memory trimming and returns when it
// next needs the session's timer (zero: not at all). A lane that grew
// past its baseline and is quiet is armed for now+kcpTrimDelay; any
// activity in the meantime disarms it; once the time has come, still
// quiet, the lane is trimmed. It is called from reschedule, after every
// event, via lanesDeadline.
func (c *Conn) laneTrimDeadline(l *lane, now time.Time) time.Time {
	if l.arq == nil || !c.laneQuiet(l) || !c.laneGrown(l) {
		l.trimAt = 0
		return time.Time{}
	}
	ms := uint32(c.ep.mono(now) / int64(time.Millisecond)) // mod 2^32, compared by wrapping difference
	wait := time.Duration(int32(l.trimAt-ms)) * time.Millisecond
	if l.trimAt == 0 || wait > kcpTrimDelay {
		// Not armed yet (or the millisecond count wrapped): arm.
		l.trimAt = max(1, ms+uint32(kcpTrimDelay/time.Millisecond))
		return now.Add(kcpTrimDelay)
	}
	if wait > 0 {
		return now.Add(wait)
	}
	l.trimAt = 0
	c.shard.kcp.Trim(l.arq)
	if cap(l.inflight) > kcpMinEntries {
		l.inflight = nil
	}
	if len(l.lat.ring) > trackerMinSlots && l.lat.n == 0 {
		l.lat.ring, l.lat.head = nil, 0 // sent makes a small one
	}
	if cap(c.laneScratch) > laneScratchKeep {
		c.laneScratch = nil
	}
	return time.Time{}
}
