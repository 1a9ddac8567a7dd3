package arq

import "time"

// AckPolicy decides when the ACKs the lanes owe are sent: ACK generation
// is a policy of this layer. An ACK (or window answer) is owed once a
// data segment or window probe was taken. Flush always sends the owed
// ACKs along with data; FlushAcks sends them alone when AckNow says so;
// otherwise they wait until Deadline (Timers sends them then), or, for a
// policy with no deadline of its own (zero Deadline), KCP's interval
// tick (timers.go ackHeld). Its methods are called on the owning
// goroutine.
type AckPolicy interface {
	// OnData records a data segment of size bytes that lane took at now.
	// full says it is a full-size segment (the KCP MTU), outOfOrder that
	// its sn is not the one after the highest the lane had seen (a gap
	// opened, or a gap or repeat arrived).
	OnData(now time.Time, lane int, size int, full, outOfOrder bool)
	// AckNow reports whether the ACKs owed go out at now.
	AckNow(now time.Time) bool
	// Deadline is when owed ACKs go at the latest; zero for no deadline
	// of the policy's own (KCP's interval tick then).
	Deadline() time.Time
	// OnAckSent records that the owed ACKs were sent at now.
	OnAckSent(now time.Time)
}

// Immediate is the default AckPolicy: owed ACKs go at once, at the end of
// the event that made them owed.
type Immediate struct{}

func (Immediate) OnData(time.Time, int, int, bool, bool) {}
func (Immediate) AckNow(time.Time) bool                  { return true }
func (Immediate) Deadline() time.Time                    { return time.Time{} }
func (Immediate) OnAckSent(time.Time)                    {}

// Gap reports whether some lane has received a segment beyond one it
// is missing (KCP's next expected sn is below the highest received): an
// ACK would report the hole. True when KCP's state cannot be read
// (internal/kcpx's fallback).
func (ls *Lanes) Gap() bool {
	for _, l := range ls.lanes {
		if l.arq == nil || !l.rcvSeen {
			continue
		}
		rcvNxt, _, _, ok := ls.sh.KCP.RecvState(l.arq)
		if !ok || rcvNxt != l.rcvNext {
			return true
		}
	}
	return false
}

// AcksHeld reports whether the lanes owe ACKs that the policy holds back
// at now: the caller then sends data only if it has new data (a flush
// sends the owed ACKs along).
func (ls *Lanes) AcksHeld(now time.Time) bool {
	return ls.acksOwed() && !ls.acks.AckNow(now)
}
