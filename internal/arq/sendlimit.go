package arq

import (
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// Per-segment admission. Admit hands whole messages to the lanes' KCPs,
// and a KCP sends all it holds at its next flush: one 16 KiB message is a
// burst of 13 packets, more than the whole window at a few Mbit/s. With
// SetSendLimit on, the caller's byte budget bounds the new segments
// themselves: before each flush the lane's KCP window (snd_wnd) is set to
// its segments in flight plus the segments the budget still allows
// (internal/kcpx LimitNew), so KCP moves only those from its send queue
// into flight and the rest of a message waits there for the next budget
// (SetSendBudget before each event's flushes). Retransmissions are not
// limited: they stay in flight. A message still enters KCP only once the
// segments waiting unsent there leave room in the budget (the caller
// subtracts UnsentBytes), so the send queue holds about one message.
//
// Lanes with deadline messages in their KCP are not limited: the skip
// markers of a lapsed message (deadline.go) need its segments numbered,
// that is sent. Without internal/kcpx's fast path nothing is limited
// (whole messages, as before).

// SetSendLimit turns per-segment admission on (the session's congestion
// gate) or off (the default). Turned off, the lanes' KCPs get their whole
// send window back at once.
func (ls *Lanes) SetSendLimit(on bool) {
	if ls.limit && !on {
		for _, l := range ls.lanes {
			if l.arq != nil {
				ls.sh.KCP.LimitNew(l.arq, -1, uint32(ls.cfg.SendWindow))
			}
		}
	}
	ls.limit = on
}

// SetSendBudget sets the bytes of new segments the flushes of the current
// event may send, wire bytes of full segments (NoLimit: the send window
// only). Without SetSendLimit it has no effect.
func (ls *Lanes) SetSendBudget(bytes int) {
	switch {
	case bytes < 0:
		ls.newSegs = -1
	case bytes == 0:
		ls.newSegs = 0
	default:
		seg := ls.segWire()
		ls.newSegs = (bytes + seg - 1) / seg
	}
}

// CanSendNew reports whether segments wait unsent in the lanes' KCPs and
// the budget lets some go.
func (ls *Lanes) CanSendNew() bool { return ls.newSegs != 0 && ls.Unsent() > 0 }

// Unsent is the segments the lanes' KCPs hold that no flush has sent yet.
func (ls *Lanes) Unsent() int {
	if !ls.limit {
		return 0
	}
	n := 0
	for _, l := range ls.lanes {
		if l.arq != nil {
			n += ls.sh.KCP.Unsent(l.arq)
		}
	}
	return n
}

// UnsentBytes is Unsent in wire bytes of full segments.
func (ls *Lanes) UnsentBytes() int { return ls.Unsent() * ls.segWire() }

// segWire is the wire bytes of a full data segment: payload, KCP header
// and the packet's overhead (SetController).
func (ls *Lanes) segWire() int { return ls.mss + wire.SegmentHeaderSize + ls.ccOverhead }

// flushKCP flushes l's KCP, with at most the budget's new segments when
// limited, and takes the segments sent from the budget.
func (ls *Lanes) flushKCP(l *lane, typ kcp.FlushType) bool {
	if fullFlush(typ) {
		ls.holdTimeouts(l)
	}
	if !ls.limit {
		return ls.sh.KCP.Flush(l.arq, typ)
	}
	n := ls.newSegs
	if !l.minExpiry.IsZero() || l.lapsed > 0 {
		n = -1
	}
	before, ok := ls.sh.KCP.LimitNew(l.arq, n, uint32(ls.cfg.SendWindow))
	flushed := ls.sh.KCP.Flush(l.arq, typ)
	if ok && ls.newSegs > 0 {
		after, _ := ls.sh.KCP.SendNext(l.arq)
		ls.newSegs = max(0, ls.newSegs-int(after-before))
	}
	return flushed
}

// update runs l's KCP interval tick (which flushes) under the budget.
func (ls *Lanes) update(l *lane) {
	ls.holdTimeouts(l)
	if ls.limit {
		n := ls.newSegs
		if !l.minExpiry.IsZero() || l.lapsed > 0 {
			n = -1
		}
		before, ok := ls.sh.KCP.LimitNew(l.arq, n, uint32(ls.cfg.SendWindow))
		l.arq.Update()
		if ok && ls.newSegs > 0 {
			after, _ := ls.sh.KCP.SendNext(l.arq)
			ls.newSegs = max(0, ls.newSegs-int(after-before))
		}
		return
	}
	l.arq.Update()
}
