package uxp

import "time"

// Path MTU discovery in the style of DPLPMTUD (RFC 8899), the core: pure,
// no I/O, the caller passes now. Each side probes its own direction.
//
//   - A session starts at a safe base packet size (pmtuBase, 1200 bytes,
//     as QUIC; lower only if the negotiated maximum is lower, higher if
//     MaxMessageSize needs it) and searches upward to the negotiated
//     maximum (negotiate.go) with padded probe packets (frame type 13)
//     that the peer acknowledges (frame type 14).
//   - Search: the maximum first (most paths carry it), then a binary
//     search between the largest size acknowledged and the smallest that
//     failed. A probe is sent up to pmtuMaxProbes times, one probe
//     timeout apart, before its size counts as failed. An acknowledged
//     probe raises the session's packet size at once.
//   - Black hole: once the search is done, a rise in KCP retransmissions
//     (or, without one, pmtuConfirmEvery) sends a probe of the current
//     size. pmtuMaxProbes losses of it in a row, while the acknowledgements
//     of the peer still arrive, mean the path shrank: the session falls
//     back to the base and searches again below the size that failed.
//     The retransmission count is looked at lazily: whenever the session
//     runs its timer anyway, at most once per pmtuCheckEvery. The check
//     sets no deadline of its own: a session that retransmits is woken by
//     its retransmission timers, so it is looked at within a wake of the
//     first retransmission, and one that does not has nothing to look at
//     (a wake every second for each of 10,000 idle sessions was 10,000
//     timer events a second doing nothing; issue 18).
//   - Raise: pmtuRaiseAfter after a search ended below the maximum, it
//     searches again from the current size (the path may have grown).
//   - Spread: the confirmation and raise timers are stretched by a
//     per-session factor in [1, 1+pmtuJitter), drawn anew each time from
//     the session ID (seed). Sessions that connected together (a mass
//     connect, every client back after a restart) would otherwise confirm
//     together: with 10,000 sessions, 10,000 full-size probes and their
//     acknowledgements in a burst every pmtuConfirmEvery on both sides,
//     and the probes lost to that burst's own overload looked like black
//     holes and started 10,000 searches (the soak's latency spikes; issue
//     18).
//   - Overload: a worker that is behind sends no probe (postpone): a
//     probe is never urgent, and one lost to the worker's own overload
//     says nothing about the path. The retransmissions counted meanwhile
//     are forgotten for the same reason.
//
// A peer that does not implement it drops the probes (an unknown frame
// type), and the session stays at the base size.

/* Implementation constants (RFC 8899 names in brackets) */
const (
	pmtuBase         = 1200 // [BASE_PLPMTU], QUIC's minimum
	pmtuMaxProbes    = 3    // [MAX_PROBES]
	pmtuMinTimeout   = 100 * time.Millisecond
	pmtuMaxTimeout   = 2 * time.Second
	pmtuCheckEvery   = time.Second      // at most how often retransmissions are looked at
	pmtuConfirmEvery = 30 * time.Second // confirm the size anyway this often
	pmtuRaiseAfter   = 10 * time.Minute // [PMTU_RAISE_TIMER]
	pmtuJitter       = 0.5              // confirm and raise timers are stretched by up to this fraction
	// A worker that is behind postpones due probes by pmtuRetryBase
	// plus up to pmtuRetrySpread, and retransmissions until
	// pmtuOverloadQuiet after it are not taken as a sign of a black hole.
	pmtuRetryBase     = 250 * time.Millisecond
	pmtuRetrySpread   = time.Second
	pmtuOverloadQuiet = 2 * time.Second
	pmtuMinFragment   = 64     // bounds the fragments of one frame (a peer sends ≥ 1100-byte ones)
	maxFragmentedSize = maxMTU // an inner frame is one packet of an older, larger size
)

// pmtuState is one session's search, owned by its shard.
type pmtuState struct {
	base, max int // the search range
	cur       int // the packet size in use: the largest confirmed

	searching bool
	lo, hi    int  // searching: lo passed (cur), hi the largest not yet failed
	triedMax  bool // searching: the maximum was probed first

	probe      int    // the size of the outstanding probe; 0: none
	probeID    uint32 // its id; each new probe gets the next
	tries      int    // how often it was sent
	probeDue   time.Time
	confirming bool // the probe checks cur (black-hole detection)

	seed       uint32    // the timers' spread (the session ID)
	draws      uint32    // spread factors drawn so far
	quietUntil time.Time // overloaded: retransmissions before this say nothing

	raiseAt     time.Time // not searching: search again then
	checkAt     time.Time // not searching: look at retransmissions from then on (no deadline: lazily)
	confirmAt   time.Time // not searching: confirm cur then anyway
	lastRetrans uint64
}

// newPMTU starts a search from base to max; base >= max means there is
// nothing to search and the session uses max. seed spreads the session's
// timers from other sessions' (the session ID).
func newPMTU(base, max int, seed uint32, now time.Time) pmtuState {
	p := pmtuState{base: min(base, max), max: max, cur: min(base, max), seed: seed}
	p.idle(now)
	if p.base < p.max {
		p.startSearch(p.base, p.max, false, now)
	}
	return p
}

func (p *pmtuState) startSearch(lo, hi int, triedMax bool, now time.Time) {
	p.searching, p.lo, p.hi, p.triedMax = true, lo, hi, triedMax
	p.probe, p.confirming = 0, false
	p.probeDue = now // the first probe goes at once
}

// idle sets the timers of a session that is not searching.
func (p *pmtuState) idle(now time.Time) {
	p.raiseAt = now.Add(p.spread(pmtuRaiseAfter))
	p.checkAt = now.Add(pmtuCheckEvery)
	p.confirmAt = now.Add(p.spread(pmtuConfirmEvery))
}

// spread stretches d by the session's next factor in [1, 1+pmtuJitter):
// never shorter, so d stays the least time between two confirmations.
func (p *pmtuState) spread(d time.Duration) time.Duration {
	p.draws++
	return d + time.Duration(float64(d)*pmtuJitter*unitFrac(p.seed, p.draws))
}

// overloaded is tick's stand-in while the session's worker is behind (see
// the doc at the top): it sends nothing, and if a timer is due it moves
// every due timer pmtuRetryBase plus a per-session spread ahead. The
// retransmissions counted until pmtuOverloadQuiet after the overload are
// forgotten: retrans is the session's count now. An outstanding probe
// stays outstanding (its acknowledgement is still taken); it is resent,
// or counted as lost, only once the worker caught up.
func (p *pmtuState) overloaded(now time.Time, retrans uint64) {
	p.lastRetrans = retrans
	p.quietUntil = now.Add(pmtuOverloadQuiet)
	if d := p.deadline(); d.IsZero() || d.After(now) {
		return
	}
	p.draws++
	until := now.Add(pmtuRetryBase + time.Duration(float64(pmtuRetrySpread)*unitFrac(p.seed, p.draws)))
	p.checkAt = later(p.checkAt, until)
	if p.probe != 0 || p.searching {
		p.probeDue = later(p.probeDue, until)
	}
	p.confirmAt = later(p.confirmAt, until)
	p.raiseAt = later(p.raiseAt, until)
}

// deadline is when tick must run next; zero: never.
func (p *pmtuState) deadline() time.Time {
	switch {
	case p.probe != 0:
		return p.probeDue
	case p.searching:
		return p.probeDue // the next probe is due
	case p.base >= p.max:
		return time.Time{} // nothing to search or confirm
	case p.cur < p.max && p.cur > p.base:
		return earlier(p.confirmAt, p.raiseAt)
	case p.cur < p.max:
		return p.raiseAt
	}
	// checkAt is no deadline: tick looks at retransmissions whenever
	// the session's timer runs anyway (see the doc at the top).
	return p.confirmAt
}

// tick advances the timers and returns the size and id of a probe to send
// now (size 0: none) and whether cur changed. retrans is the session's
// retransmission count, timeout the probe timeout.
func (p *pmtuState) tick(now time.Time, retrans uint64, timeout time.Duration) (size int, id uint32, changed bool) {
	if p.probe != 0 {
		if now.Before(p.probeDue) {
			return 0, 0, false
		}
		if p.tries < pmtuMaxProbes {
			return p.send(now, timeout)
		}
		changed = p.failed(now)
	}
	if !p.searching && p.base < p.max {
		switch {
		case !now.Before(p.raiseAt) && p.cur < p.max:
			p.startSearch(p.cur, p.max, false, now)
		default:
			lost := false
			if !now.Before(p.checkAt) {
				p.checkAt = now.Add(pmtuCheckEvery)
				lost = retrans > p.lastRetrans && !now.Before(p.quietUntil)
				p.lastRetrans = retrans
			}
			// confirmAt is a deadline of its own (checkAt is not), so
			// it confirms whatever checkAt says.
			if p.cur > p.base && (lost || !now.Before(p.confirmAt)) {
				p.probe, p.probeID, p.tries, p.confirming = p.cur, p.probeID+1, 0, true
				size, id, _ = p.send(now, timeout)
				return size, id, changed
			}
		}
	}
	if p.searching && p.probe == 0 {
		if p.lo >= p.hi {
			p.searching = false
			p.idle(now)
			return 0, 0, changed
		}
		next := p.hi
		if p.triedMax {
			next = (p.lo + p.hi + 1) / 2
		}
		p.triedMax = true
		p.probe, p.probeID, p.tries = next, p.probeID+1, 0
		size, id, _ = p.send(now, timeout)
	}
	return size, id, changed
}

func (p *pmtuState) send(now time.Time, timeout time.Duration) (int, uint32, bool) {
	p.tries++
	p.probeDue = now.Add(timeout)
	return p.probe, p.probeID, false
}

// failed handles a probe lost pmtuMaxProbes times. It reports whether cur
// changed (a black hole).
func (p *pmtuState) failed(now time.Time) bool {
	size := p.probe
	p.probe = 0
	if p.confirming {
		// Full-size packets no longer pass: fall back to the base and
		// search below the size that failed.
		p.confirming = false
		p.cur = p.base
		p.startSearch(p.base, size-1, true, now)
		return true
	}
	p.hi = size - 1
	return false
}

// ack handles the peer's acknowledgement of probe id of size; it reports
// whether cur changed. Stale or unknown acknowledgements are ignored.
func (p *pmtuState) ack(id uint32, size int, now time.Time) bool {
	if p.probe == 0 || id != p.probeID || size != p.probe {
		return false
	}
	p.probe = 0
	if p.confirming {
		p.confirming = false
		p.confirmAt = now.Add(p.spread(pmtuConfirmEvery))
		return false
	}
	p.lo = size
	p.probeDue = now // the next probe goes at once
	changed := size > p.cur
	p.cur = max(p.cur, size)
	return changed
}
