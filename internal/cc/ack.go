package cc

import "time"

/* Implementation constants */

const (
	// DefaultAckEvery is how many full-size packets may arrive before an
	// ACK must be sent (TCP's and QUIC's 2).
	DefaultAckEvery = 2
	// DefaultMaxAckDelay caps the ACK delay (QUIC's max_ack_delay).
	DefaultMaxAckDelay = 25 * time.Millisecond
	// ackDelayRTTFraction is the ACK delay as a fraction of the RTT: RTT/4,
	// as in the IETF ACK-frequency draft's recommendation, so that thinning
	// adds at most a quarter RTT to the sender's RTT samples and loss
	// detection.
	ackDelayRTTFraction = 4
	// minAckDelay keeps a sub-millisecond RTT from turning the delay into
	// a timer storm.
	minAckDelay = time.Millisecond
)

// AckPolicy decides when a receiver acknowledges: after every AckEvery
// full-size packets, or when the ACK delay min(RTT/4, MaxAckDelay) has
// passed since the first unacknowledged packet (MaxAckDelay before any RTT
// sample), whichever comes first. It acknowledges at once when:
//
//   - a packet arrives out of order (a gap opens, or a gap is filled), so
//     that the sender's loss detection is not delayed;
//   - the sender marked the packet as the last of a burst (immediate);
//   - the packet is shorter than a full-size packet, which in practice
//     means the tail of a message or burst: the tail-loss advantage is
//     kept, and small periodic game packets, which are far below any
//     budget, are acknowledged as promptly as today.
//
// The sender must add the ACK delay (MaxAckDelay) to its retransmission
// and probe timeouts. AckPolicy is pure and not safe for concurrent use.
type AckPolicy struct {
	// AckEvery is the number of full-size packets per ACK. Zero means
	// DefaultAckEvery; 1 acknowledges every packet.
	AckEvery int
	// MaxAckDelay caps the ACK delay. Zero means DefaultMaxAckDelay.
	MaxAckDelay time.Duration
	// FullSize is the size from which a packet counts as full. Zero means
	// DefaultMSS.
	FullSize int

	largest  uint64
	seen     bool
	pending  int       // packets received since the last ACK
	deadline time.Time // zero when no ACK is pending
	rtt      time.Duration
}

// SetRTT gives the policy the current smoothed RTT.
func (a *AckPolicy) SetRTT(rtt time.Duration) { a.rtt = rtt }

// AckDelay returns the delay after which a pending ACK is sent.
func (a *AckPolicy) AckDelay() time.Duration {
	maxDelay := a.MaxAckDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxAckDelay
	}
	if a.rtt <= 0 {
		return maxDelay
	}
	return max(min(a.rtt/ackDelayRTTFraction, maxDelay), minAckDelay)
}

// OnPacket records the arrival at now of packet pn of size bytes and
// reports whether an ACK should be sent now. If not, an ACK is due by
// Deadline. immediate is the sender's mark for the last packet of a burst.
func (a *AckPolicy) OnPacket(now time.Time, pn uint64, size int, immediate bool) (ackNow bool) {
	outOfOrder := a.seen && pn != a.largest+1
	if !a.seen || pn > a.largest {
		a.largest = pn
		a.seen = true
	}
	full := a.FullSize
	if full <= 0 {
		full = DefaultMSS
	}
	return a.OnData(now, size >= full, outOfOrder, immediate)
}

// OnData is OnPacket for a receiver that judges order and size itself
// (several sequence spaces, such as uxp's lanes): full says the packet is
// full-size, outOfOrder that it did not follow the largest one received.
func (a *AckPolicy) OnData(now time.Time, full, outOfOrder, immediate bool) (ackNow bool) {
	a.pending++
	every := a.AckEvery
	if every <= 0 {
		every = DefaultAckEvery
	}
	if outOfOrder || immediate || !full || a.pending >= every {
		return true
	}
	if a.deadline.IsZero() {
		a.deadline = now.Add(a.AckDelay())
	}
	return false
}

// Deadline returns when the pending ACK is due, or the zero time if none is
// pending.
func (a *AckPolicy) Deadline() time.Time { return a.deadline }

// OnAckSent records that an ACK covering everything received was sent.
func (a *AckPolicy) OnAckSent() {
	a.pending = 0
	a.deadline = time.Time{}
}
