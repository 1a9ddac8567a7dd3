package cc

import (
	"math"
	"time"
)

/* Implementation constants */

const (
	// PacerQuantumTime is how much of the pacing rate the pacer lets out
	// in one burst: 1 ms, as Linux's fq scheduler and quic-go do. A burst
	// of 1 ms of the rate adds at most 1 ms of queue at a bottleneck that
	// runs at that rate, whatever the rate.
	PacerQuantumTime = time.Millisecond
	// PacerMinQuantumPackets is the smallest burst, in packets: after
	// idling, this many packets leave at once whatever the rate, so a
	// small periodic game packet far below the budget is never delayed.
	PacerMinQuantumPackets = 2
	// PacerMaxQuantum caps the burst in bytes, only at rates above 8
	// Gbit/s (1 MiB is 1 ms of them). It used to be 64 KiB (one GSO
	// batch), which capped a sender woken every 0.1-1 ms at 64-600 MB/s
	// whatever its rate: on loopback, 200 MB/s.
	PacerMaxQuantum = 1 << 20
	// PacerMaxDebt bounds the debt Charge leaves (64 KiB): a burst of
	// retransmissions delays what the pacer times by at most its own
	// transmission time, and by no more than 64 KiB of it. (Bounded to
	// 10 ms of the rate instead, the 20 → 5 Mbit/s step of
	// TestBottleneckRateStep dropped 0.4-4.8 % at the queue instead of
	// 0-1.5 %.)
	PacerMaxDebt = 64 << 10
	// PacerPriorityShare is the share of the rate the priority bucket
	// earns (TimeUntilSendPriority): priority packets get at least half
	// the rate whatever else waits, and the other packets at least the
	// other half. The whole rate, and a flood of datagrams through a
	// bottleneck took all the tokens: the session's reliable data, from
	// which its controller learns the path, stopped, the controller's
	// estimate froze above the link and the bottleneck's queue stood full
	// (seen in a netsim experiment, not kept as a test: it was not
	// deterministic; docs/architecture.md, datagrams under the gate).
	PacerPriorityShare = 0.5
	// PacerMaxLateness bounds the credit for a late wake (see Pacer):
	// 2 ms covers a timer heap that rounds deadlines up to 1 ms slots
	// and wakes at least 1 ms ahead. A wake later than that is not a
	// late timer but a sender that did not wait: no credit.
	PacerMaxLateness = 2 * time.Millisecond
)

// Pacer is a token bucket that spreads packets at a rate: tokens (bytes)
// accrue at the rate up to a burst quantum, and a packet may leave when the
// bucket holds its size. The quantum is max(1 ms of the rate, 2 packets),
// at most 1 MiB; the bucket starts full, and refills fully after an idle
// period, so a sender far below its budget sends without delay.
//
// A sender's timers are coarse: when NextSendTime said "wait until t" and
// the sender comes back late, at t + late (late ≤ PacerMaxLateness), the
// bucket may hold the quantum plus late's worth of the rate for that
// moment, so that the lateness of the timer does not lower the average
// rate. Credit that is not used then is gone at the next refill.
//
// Priority packets (a session's datagrams, which are dropped after a short
// wait) have a bucket of their own besides, which earns PacerPriorityShare
// of the rate, up to the same size, and which only they drain
// (ChargePriority). They wait for that bucket, not for the debt that
// bursts of other packets left in the shared one (Charge: FEC parity,
// retransmissions, a message's segments), so a trickle of them is never
// delayed by the others. Everything sent drains the shared bucket, which
// is all that the other packets wait for: those get what priority packets
// leave, and at least the rest of the rate, and together, apart from what
// Charge adds untimed, they stay within it.
//
// A Pacer is pure (no clock, no timers, no goroutines) and not safe for
// concurrent use. The session's owner asks NextSendTime for the earliest
// moment it may send and arms the shard's timer heap for it; there is no
// ticker per session.
type Pacer struct {
	mss    int
	rate   Bandwidth
	tokens float64 // bytes; negative is debt (OnSent, Charge)
	// prio is the priority packets' bucket (TimeUntilSendPriority):
	// refilled at PacerPriorityShare of the rate, charged only by
	// ChargePriority.
	prio float64
	last time.Time
	// due is when the pacer last told the sender a packet may leave
	// (TimeUntilSend > 0); zero when it did not, or that time passed.
	due time.Time
	// late is the lateness credited at the last refill (see Pacer): the
	// bucket's limit until the next one.
	late time.Duration
}

// NewPacer returns a pacer for packets of up to mss bytes (DefaultMSS if
// zero), unlimited until SetRate.
func NewPacer(mss int) *Pacer {
	if mss <= 0 {
		mss = DefaultMSS
	}
	p := &Pacer{mss: mss, rate: Unlimited}
	p.tokens = p.quantum()
	p.prio = p.tokens
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

// limit is what the bucket may hold at the current refill: the quantum,
// plus the credit for a late wake.
func (p *Pacer) limit() float64 {
	return p.quantum() + float64(p.rate)*p.late.Seconds()
}

// Quantum returns the bucket size in bytes, the burst that leaves at once
// after an idle period: max(1 ms of the rate, 2 packets), at most
// PacerMaxQuantum.
func (p *Pacer) Quantum() int { return int(p.quantum()) }

func (p *Pacer) unlimited() bool {
	return p.rate <= 0 || math.IsInf(float64(p.rate), 1)
}

// Rate returns the current pacing rate.
func (p *Pacer) Rate() Bandwidth { return p.rate }

// SetRate changes the rate at now (typically to a controller's PacingRate
// after each acknowledgement). Tokens earned so far are kept, up to the
// new rate's limit. A rate of zero or [Unlimited] disables pacing.
func (p *Pacer) SetRate(now time.Time, rate Bandwidth) {
	p.refill(now)
	p.rate = rate
	if p.unlimited() {
		p.late = 0
	}
	p.tokens = math.Min(p.tokens, p.limit())
	p.prio = math.Min(p.prio, p.limit())
}

func (p *Pacer) refill(now time.Time) {
	if p.last.IsZero() {
		p.last = now
		return
	}
	if !now.After(p.last) {
		return
	}
	p.late = 0
	if !p.due.IsZero() && now.After(p.due) {
		if late := now.Sub(p.due); late <= PacerMaxLateness {
			p.late = late
		}
		p.due = time.Time{}
	}
	if p.unlimited() {
		p.late = 0
		p.tokens = p.quantum()
		p.prio = p.tokens
	} else {
		earned := float64(p.rate) * now.Sub(p.last).Seconds()
		p.tokens = math.Min(p.limit(), p.tokens+earned)
		p.prio = math.Min(p.limit(), p.prio+earned*PacerPriorityShare)
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
	wait := durationOf((need - p.tokens) / float64(p.rate))
	p.due = now.Add(wait)
	return wait
}

// TimeUntilSendPriority is TimeUntilSend for a priority packet (a
// datagram): it waits for the priority bucket (see Pacer), not for the
// debt other packets left. Charge it with ChargePriority when sent.
func (p *Pacer) TimeUntilSendPriority(now time.Time, size int) time.Duration {
	p.refill(now)
	if p.unlimited() {
		return 0
	}
	need := math.Min(float64(size), p.quantum())
	if p.prio >= need {
		return 0
	}
	wait := durationOf((need - p.prio) / (float64(p.rate) * PacerPriorityShare))
	p.due = now.Add(wait)
	return wait
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
// OnSent, the debt may grow to PacerMaxDebt, so that a burst of them
// delays what the pacer does time by the burst's own transmission time.
func (p *Pacer) Charge(now time.Time, size int) {
	p.refill(now)
	p.tokens = math.Max(p.tokens-float64(size), -PacerMaxDebt)
}

// ChargePriority is Charge for a priority packet sent at now on the
// priority bucket (TimeUntilSendPriority): it drains both buckets.
func (p *Pacer) ChargePriority(now time.Time, size int) {
	p.Charge(now, size)
	p.prio = math.Max(p.prio-float64(size), -PacerMaxDebt)
}

// OnSent charges a packet of size bytes sent at now.
func (p *Pacer) OnSent(now time.Time, size int) {
	p.refill(now)
	p.tokens -= float64(size)
	// Debt is bounded so that one oversized packet does not stall the
	// pacer for longer than its own transmission time.
	p.tokens = math.Max(p.tokens, -float64(p.mss))
}
