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
//   - Raise: pmtuRaiseAfter after a search ended below the maximum, it
//     searches again from the current size (the path may have grown).
//
// A peer that does not implement it drops the probes (an unknown frame
// type), and the session stays at the base size.

/* Implementation constants (RFC 8899 names in brackets) */
const (
	pmtuBase          = 1200 // [BASE_PLPMTU], QUIC's minimum
	pmtuMaxProbes     = 3    // [MAX_PROBES]
	pmtuMinTimeout    = 100 * time.Millisecond
	pmtuMaxTimeout    = 2 * time.Second
	pmtuCheckEvery    = time.Second      // how often retransmissions are looked at
	pmtuConfirmEvery  = 30 * time.Second // confirm the size anyway this often
	pmtuRaiseAfter    = 10 * time.Minute // [PMTU_RAISE_TIMER]
	pmtuMinFragment   = 64               // bounds the fragments of one frame (a peer sends ≥ 1100-byte ones)
	maxFragmentedSize = maxMTU           // an inner frame is one packet of an older, larger size
)

/* Specification constants (docs/protocol.md, section 5.7) */
const (
	frameMTUProbe   byte = 13 // body: probe id u32 | zero padding to the probe size
	frameMTUAck     byte = 14 // body: probe id u32 | size of the probe datagram u16
	frameFragment   byte = 15 // body: id u16 | offset u16 | total u16 | bytes of an inner frame
	pmtuProbeIDSize      = 4
	pmtuAckBodySize      = pmtuProbeIDSize + 2
	fragmentHdrSize      = 6
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

	raiseAt     time.Time // not searching: search again then
	checkAt     time.Time // not searching: look at retransmissions then
	confirmAt   time.Time // not searching: confirm cur then anyway
	lastRetrans uint64
}

// newPMTU starts a search from base to max; base >= max means there is
// nothing to search and the session uses max.
func newPMTU(base, max int, now time.Time) pmtuState {
	p := pmtuState{base: min(base, max), max: max, cur: min(base, max)}
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
	p.raiseAt = now.Add(pmtuRaiseAfter)
	p.checkAt = now.Add(pmtuCheckEvery)
	p.confirmAt = now.Add(pmtuConfirmEvery)
}

// deadline is when tick must run next; zero: never.
func (p *pmtuState) deadline() time.Time {
	switch {
	case p.probe != 0:
		return p.probeDue
	case p.searching:
		return p.probeDue // the next probe is due
	case p.cur < p.max:
		return earlier(p.checkAt, p.raiseAt)
	case p.cur > p.base:
		return p.checkAt
	}
	return time.Time{}
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
		case !now.Before(p.checkAt):
			p.checkAt = now.Add(pmtuCheckEvery)
			lost := retrans > p.lastRetrans
			p.lastRetrans = retrans
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
		p.confirmAt = now.Add(pmtuConfirmEvery)
		return false
	}
	p.lo = size
	p.probeDue = now // the next probe goes at once
	changed := size > p.cur
	p.cur = max(p.cur, size)
	return changed
}
