package cc

import (
	"math"
	"time"
)

/* Implementation constants */

const (
	// PacerQuantumTime is how much of the pacing rate the pacer lets out
	// in one burst: 1 ms, as Linux's fq scheduler and quic-go do.
	PacerQuantumTime = time.Millisecond
	// PacerMinQuantumPackets is the smallest burst, in packets: after
	// idling, this many packets leave at once whatever the rate, so a
	// small periodic game packet far below the budget is never delayed.
	PacerMinQuantumPackets = 2
	// PacerMaxQuantum caps the burst in bytes (64 KiB, one GSO batch) at
	// high rates.
	PacerMaxQuantum = 64 << 10
)

// Pacer is a token bucket that spreads packets at a rate: tokens (bytes)
// accrue at the rate up to a burst quantum, and a packet may leave when the
// bucket holds its size. The quantum is max(1 ms of the rate, 2 packets),
// at most 64 KiB; the bucket starts full, and refills fully after an idle
// period, so a sender far below its budget sends without delay.
//
// A Pacer is pure (no clock, no timers, no goroutines) and not safe for
// concurrent use. The session's owner asks NextSendTime for the earliest
// moment it may send and arms the shard's timer heap for it; there is no
// ticker per session.
type Pacer struct {
	mss    int
	rate   Bandwidth
	tokens float64 // bytes; may go negative by at most one packet
	last   time.Time
}

// NewPacer returns a pacer for packets of up to mss bytes (DefaultMSS if
// zero), unlimited until SetRate.
func NewPacer(mss int) *Pacer {
	if mss <= 0 {
		mss = DefaultMSS
	}
	p := &Pacer{mss: mss, rate: Unlimited}
	p.tokens = p.quantum()
	return p
}

// quantum is the bucket size in bytes.
func (p *Pacer) quantum() float64 {
	minQ := float64(PacerMinQuantumPackets * p.mss)
	if p.unlimited() {
		return math.Max(minQ, PacerMaxQuantum)
	}
	q := float64(p.rate) * PacerQuantumTime.Seconds()
	return math.Max(minQ, math.Min(q, PacerMaxQuantum))
}

func (p *Pacer) unlimited() bool {
	return p.rate <= 0 || math.IsInf(float64(p.rate), 1)
}

// Rate returns the current pacing rate.
func (p *Pacer) Rate() Bandwidth { return p.rate }

// SetRate changes the rate at now (typically to a controller's PacingRate
// after each acknowledgement). Tokens earned so far are kept. A rate of
// zero or [Unlimited] disables pacing.
func (p *Pacer) SetRate(now time.Time, rate Bandwidth) {
	p.refill(now)
	p.rate = rate
	p.tokens = math.Min(p.tokens, p.quantum())
}

func (p *Pacer) refill(now time.Time) {
	if p.last.IsZero() {
		p.last = now
		return
	}
	if !now.After(p.last) {
		return
	}
	q := p.quantum()
	if p.unlimited() {
		p.tokens = q
	} else {
		p.tokens = math.Min(q, p.tokens+float64(p.rate)*now.Sub(p.last).Seconds())
	}
	p.last = now
}

// TimeUntilSend returns how long from now a packet of size bytes must wait;
// zero means it may leave now.
func (p *Pacer) TimeUntilSend(now time.Time, size int) time.Duration {
	p.refill(now)
	if p.unlimited() {
		return 0
	}
	// A packet needs its full size in tokens, except that one larger than
	// the quantum needs only a full bucket (else it could never leave).
	need := math.Min(float64(size), p.quantum())
	if p.tokens >= need {
		return 0
	}
	return durationOf((need - p.tokens) / float64(p.rate))
}

// Available returns the bytes that may leave at now without waiting: the
// tokens in the bucket (math.MaxInt/2 when unpaced, 0 when in debt).
func (p *Pacer) Available(now time.Time) int {
	p.refill(now)
	if p.unlimited() {
		return math.MaxInt / 2
	}
	return int(max(p.tokens, 0))
}

// NextSendTime returns the earliest time a packet of size bytes may leave:
// now if it may leave at once. It is what a shard puts in its timer heap.
func (p *Pacer) NextSendTime(now time.Time, size int) time.Time {
	return now.Add(p.TimeUntilSend(now, size))
}

// Charge charges size bytes sent at now that the pacer did not time (a
// sender's retransmissions, which its ARQ sends when it must): unlike
// OnSent, the debt may grow to PacerMaxQuantum, so that a burst of them
// delays what the pacer does time by the burst's own transmission time.
func (p *Pacer) Charge(now time.Time, size int) {
	p.refill(now)
	p.tokens = math.Max(p.tokens-float64(size), -PacerMaxQuantum)
}

// OnSent charges a packet of size bytes sent at now.
func (p *Pacer) OnSent(now time.Time, size int) {
	p.refill(now)
	p.tokens -= float64(size)
	// Debt is bounded so that one oversized packet does not stall the
	// pacer for longer than its own transmission time.
	p.tokens = math.Max(p.tokens, -float64(p.mss))
}
