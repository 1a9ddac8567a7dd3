package arq

import (
	"time"

	"github.com/uxp-go/uxp/internal/kcpx"
)

// A lane whose KCP is idle (nothing to send, acknowledge or deliver) for
// TrimDelay gets back to its baseline memory: internal/kcpx trims the KCP
// (Factory.Trim), and the lane drops its own inflight list, delivery
// tracker and the lanes' scratch buffer if they grew. The delay keeps a
// session that sends bursts at a steady rate from shrinking and regrowing
// on every burst.

/* Implementation constants */
const (
	// TrimDelay is how long a lane's KCP stays idle before the memory it
	// grew is given back.
	TrimDelay = time.Second

	// minEntries is the capacity, in entries, past which the lane's
	// inflight list counts as grown.
	minEntries = kcpx.MinEntries

	// scratchKeep bounds the lane message scratch buffer a session keeps
	// while idle: a message larger than this leaves a buffer that the
	// trim drops.
	scratchKeep = 2048

	// sentRingKeep is the size, in slots, past which the lane's ring of
	// sent segments' congestion states counts as grown.
	sentRingKeep = 16
	// sentRingMin is the slots a lane's ring starts with: a game
	// session's few segments in flight fit in it.
	sentRingMin = 4
)

// quiet reports whether a lane has nothing in progress: no message
// waiting, in flight or being received, no ACK owed.
func (ls *Lanes) quiet(l *lane) bool {
	return l.arq != nil && !l.ackPending && len(l.backlog) == 0 && len(l.inflight) == 0 &&
		ls.sh.KCP.Quiet(l.arq)
}

// grown reports whether a lane holds memory a quiet lane does without.
func (ls *Lanes) grown(l *lane) bool {
	return ls.sh.KCP.Grown(l.arq) || cap(l.inflight) > minEntries || len(l.sent.slots) > sentRingKeep ||
		(len(l.lat.ring) > TrackerMinSlots && l.lat.n == 0) || cap(ls.scratch) > scratchKeep
}

// trimDeadline runs the lane's memory trimming and returns when it next
// needs the session's timer (zero: not at all). A lane that grew past its
// baseline and is quiet is armed for now+TrimDelay; any activity in the
// meantime disarms it; once the time has come, still quiet, the lane is
// trimmed. It runs after every event, from Deadline.
func (ls *Lanes) trimDeadline(l *lane, now time.Time) time.Time {
	if l.arq == nil || !ls.quiet(l) || !ls.grown(l) {
		l.trimAt = time.Time{}
		return time.Time{}
	}
	if l.trimAt.IsZero() {
		l.trimAt = now.Add(TrimDelay)
		return l.trimAt
	}
	if now.Before(l.trimAt) {
		return l.trimAt
	}
	l.trimAt = time.Time{}
	ls.sh.KCP.Trim(l.arq)
	if cap(l.inflight) > minEntries {
		l.inflight = nil
	}
	if len(l.sent.slots) > sentRingKeep {
		l.sent = sentRing{} // quiet: nothing in flight, so n == 0
	}
	if len(l.lat.ring) > TrackerMinSlots && l.lat.n == 0 {
		l.lat.ring, l.lat.head = nil, 0 // sent makes a small one
	}
	if cap(ls.scratch) > scratchKeep {
		ls.scratch = nil
	}
	return time.Time{}
}
