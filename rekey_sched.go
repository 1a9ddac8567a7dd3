package uxp

import (
	"encoding/binary"
	"time"
)

// Rekey scheduling and overload shedding (issue 18).
//
// A rekey costs two X25519 operations on each side, and a server that
// accepted thousands of sessions in a burst (a mass connect, or every
// client coming back after a restart) would rekey them all in a burst
// RekeyAfterTime later, and again after each period: the waves that, with
// KCP's timer work, drove a 10,000-session server into collapse. So:
//
//   - Jitter: each key generation's RekeyAfterTime is scaled by a factor
//     in [1-rekeyJitter, 1+rekeyJitter] (±20 %), drawn from the session ID
//     and the epoch (rekeyJittered). Session IDs come from crypto/rand, so
//     the factors are uniformly spread; both ends compute the same factor,
//     so the client still comes first (the server adds 1/8).
//   - Budget: a worker starts at most rekeyRate(sessions) rekeys a second
//     (twice the average its sessions need, at least rekeyRateMin), a
//     token bucket one second deep, and at most rekeyPerEvent in one event
//     of its loop: a full bucket (hundreds of rekeys) spent in one batch
//     of inbound datagrams would hold every other session of the worker
//     for tens of milliseconds behind the X25519 work.
//   - Slack: a worker that is behind (shard.behind: timers due it has not
//     run, or its inbound queue over a quarter full) starts no rekey. A
//     key is good far longer than its rekey time, so this is the first
//     work to give up: receiving, acknowledging and delivering go on.
//     A postponed rekey tries again after rekeyRetryBase plus a spread,
//     and goes ahead regardless once the generation is twice its rekey
//     age (or count) old, so nothing waits forever.
//
// The responder's side is scheduled too (rekeyAnswerAdmit): answering an
// init costs the same two X25519 as starting one, and on a server, where
// clients start nearly every rekey, it is most of the rekey work. A worker
// that is behind, or out of budget, drops the init (counted as deferred);
// the peer retransmits it (250 ms, then doubling up to 2 s), and an init
// postponed for rekeyAnswerMaxDefer is answered regardless. Both sides
// draw on the one budget: each session's rekey is one start or one answer
// on each side.

/* Implementation constants */
const (
	rekeyJitter  = 0.2 // fraction of RekeyAfterTime, either way
	rekeyRateMin = 50  // rekeys a worker may start per second, whatever its sessions
	// rekeyPerEvent is how many rekeys a worker starts or answers in one
	// event (a batch of inbound datagrams, a timer slice): two X25519
	// each, about 0.1-0.2 ms, so an event is held up by at most about a
	// millisecond. Events come far more often than rekeys are due.
	rekeyPerEvent  = 6
	rekeyRetryBase = 250 * time.Millisecond
	// rekeyRetrySpread spreads the retries of postponed rekeys, so they
	// do not come back as one wave.
	rekeyRetrySpread = time.Second
	// rekeyAnswerMaxDefer bounds how long a peer's rekey init waits for
	// an answer on this side; the answer then comes at the peer's next
	// retransmission (at most rekeyMaxRetry later).
	rekeyAnswerMaxDefer = 4 * time.Second
)

// mix64 is splitmix64's finalizer: a cheap, well-spread hash of x. Not for
// anything secret: its inputs are public.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unitFrac maps (a, b) to a fraction in [0, 1).
func unitFrac(a, b uint32) float64 {
	var k [8]byte
	binary.LittleEndian.PutUint32(k[:4], a)
	binary.LittleEndian.PutUint32(k[4:], b)
	return float64(mix64(binary.LittleEndian.Uint64(k[:]))>>11) / (1 << 53)
}

// rekeyJittered scales t, the rekey time of the current generation, by its
// jitter factor.
func (c *Conn) rekeyJittered(t time.Duration) time.Duration {
	f := 1 - rekeyJitter + 2*rekeyJitter*unitFrac(c.id, c.keys.cur)
	return time.Duration(float64(t) * f)
}

// rekeyBudget is a worker's token bucket of rekey starts. Owned by the
// shard.
type rekeyBudget struct {
	tokens float64
	at     time.Time
}

// rekeyRate is the rekeys a second a worker with n sessions may start.
func rekeyRate(n int, after time.Duration) float64 {
	r := float64(rekeyRateMin)
	if after > 0 {
		r = max(r, 2*float64(n)/after.Seconds())
	}
	return r
}

// take spends one token if there is one, refilling at rate per second up
// to one second's worth.
func (b *rekeyBudget) take(now time.Time, rate float64) bool {
	if b.at.IsZero() {
		b.tokens = rate
	} else if d := now.Sub(b.at); d > 0 {
		b.tokens = min(rate, b.tokens+rate*d.Seconds())
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// rekeyAdmit decides whether a due rekey starts now. If not, it sets
// rekeyWait, the next try, and counts the postponement.
func (c *Conn) rekeyAdmit(now time.Time) bool {
	rk := &c.keys
	set := c.ep.set
	s := c.shard
	if now.Before(c.rekeyWait) {
		return false // postponed; pump calls rekeyTick too
	}
	overdue := false
	if t := c.rekeyAfterTime(); t > 0 && now.Sub(rk.since) >= 2*t {
		overdue = true
	}
	if set.rekeyAfterPackets > 0 && c.sendCounter-rk.sentAtStart >= 2*uint64(set.rekeyAfterPackets) {
		overdue = true
	}
	if !overdue && (s.behind.Load() || !s.rekeyEventSlot(now) || !s.rekeys.take(now, rekeyRate(len(s.conns), set.rekeyAfterTime))) {
		c.rekeyDeferrals++
		spread := time.Duration(float64(rekeyRetrySpread) * unitFrac(c.id^0x5bd1e995, c.rekeyDeferrals))
		c.rekeyWait = now.Add(rekeyRetryBase + spread)
		s.traffic.rekeysDeferred.Add(1)
		return false
	}
	c.rekeyWait = time.Time{}
	return true
}

// rekeyAnswerAdmit decides whether the peer's rekey init (a new one, not
// a retransmission of one answered) is answered now. If not, the init is
// dropped and counted as a deferred rekey; the peer retransmits it.
func (c *Conn) rekeyAnswerAdmit(now time.Time) bool {
	rk := &c.keys
	s := c.shard
	if rk.deferredSince.IsZero() {
		rk.deferredSince = now
	}
	if now.Sub(rk.deferredSince) < rekeyAnswerMaxDefer &&
		(s.behind.Load() || !s.rekeyEventSlot(now) || !s.rekeys.take(now, rekeyRate(len(s.conns), c.ep.set.rekeyAfterTime))) {
		s.traffic.rekeysDeferred.Add(1)
		return false
	}
	rk.deferredSince = time.Time{}
	return true
}

// rekeyEventSlot takes one of the rekeyPerEvent rekeys of the event that
// began at now (every event of the loop reads the clock once, and passes
// that now down), and reports whether there was one left.
func (s *shard) rekeyEventSlot(now time.Time) bool {
	if !now.Equal(s.rekeyEventAt) {
		s.rekeyEventAt, s.rekeyEventN = now, 0
	}
	if s.rekeyEventN >= rekeyPerEvent {
		return false
	}
	s.rekeyEventN++
	return true
}

// later returns the later of two times, where the zero time means none.
func later(d, t time.Time) time.Time {
	if t.After(d) {
		return t
	}
	return d
}

// overloadHeard reports whether the read loop dropped a datagram of this
// session for overload since the last one it authenticated; if so the
// idle timer starts again from that drop. A session whose datagrams the
// server had no time to read is not idle: its peer is sending. (The drop
// is not authenticated, so a flood of forged datagrams with a live session
// ID keeps that session from idling out while it overloads the worker;
// it ends when the overload does, and costs the slot MaxSessions bounds.)
func (c *Conn) overloadHeard() bool {
	ns := c.overloadAt.Load()
	if ns == 0 || ns <= c.ep.mono(c.hb.lastRecv) {
		return false
	}
	c.hb.received(c.ep.monoTime(ns))
	return true
}
