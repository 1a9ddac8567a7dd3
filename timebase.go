package uxp

import "time"

// One time base. Every local instant and deadline is monotonic: a time.Time
// from the shard's now or from time.Now (both carry the monotonic reading),
// or, where it must fit an int64 (an atomic, the pend queue, a lane's
// message expiries), the nanoseconds since the endpoint's epoch, itself a
// time.Now taken in newEndpoint. A wall-clock step (NTP) moves neither.
//
// The other clocks are converted in one place each:
//   - this side's clock on the wire (ping and pong, docs/protocol.md
//     section 5.3) is the same count of nanoseconds since the epoch:
//     Conn.clock;
//   - the peer's clock (a deadline message's header, internal/arq
//     deadline.go) is estimated from the last heartbeat in
//     laneIO.PeerDeadline (lanes.go), the only place a local expiry becomes a peer time;
//   - KCP's millisecond clock belongs to the reliability layer: internal/arq
//     converts the shard's now with internal/kcpx Ms, in one place;
//   - wall-clock time appears only in the IK initiation's timestamp
//     (handshake.go), which the protocol defines as Unix nanoseconds so
//     that a server can reject a replayed initiation across its restarts.

// mono is t as nanoseconds since the endpoint's epoch. t must carry a
// monotonic reading (a time.Now or an instant derived from one), so that a
// wall-clock step does not move it.
func (ep *endpoint) mono(t time.Time) int64 { return int64(t.Sub(ep.epoch)) }

// monoTime is the instant mono stands for: monotonic, like the epoch.
func (ep *endpoint) monoTime(ns int64) time.Time { return ep.epoch.Add(time.Duration(ns)) }

// monoNow is mono(time.Now()), never 0: for fields where 0 means "never".
func (ep *endpoint) monoNow() int64 { return max(ep.mono(time.Now()), 1) }

// expiryIn is the expiry (mono) of a message written now with the time
// limit d > 0: the API edge of every message deadline (WriteLane with a
// lane's default, WriteWithDeadline, the broadcasts). Never 0, which means
// "no deadline" in the pend queue and the lanes.
func (ep *endpoint) expiryIn(d time.Duration) int64 { return max(ep.mono(time.Now().Add(d)), 1) }

// expiryOf converts a queued expiry (mono) to the instant internal/arq
// takes, the zero time for none.
func (ep *endpoint) expiryOf(expiry int64) time.Time {
	if expiry == 0 {
		return time.Time{}
	}
	return ep.monoTime(expiry)
}
