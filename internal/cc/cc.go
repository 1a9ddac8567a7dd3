package cc

import (
	"math"
	"time"
)

// Bandwidth is a rate in bytes per second. +Inf means unlimited.
type Bandwidth float64

// Unlimited is the Bandwidth of a sender that is not rate limited.
var Unlimited = Bandwidth(math.Inf(1))

// BitsPerSecond returns a Bandwidth of bits bits per second.
func BitsPerSecond(bits float64) Bandwidth { return Bandwidth(bits / 8) }

// BitsPerSecond returns b in bits per second.
func (b Bandwidth) BitsPerSecond() float64 { return float64(b) * 8 }

// BytesIn returns how many bytes b carries in d, truncated; 0 for a
// non-positive d, math.MaxInt for an unlimited b.
func (b Bandwidth) BytesIn(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	v := float64(b) * d.Seconds()
	if v >= math.MaxInt/2 || math.IsInf(v, 1) {
		return math.MaxInt / 2
	}
	return int(v)
}

// TimeFor returns how long b takes to send n bytes, rounded up to the
// nanosecond; 0 for an unlimited or non-positive b.
func (b Bandwidth) TimeFor(n int) time.Duration {
	if b <= 0 || math.IsInf(float64(b), 1) {
		return 0
	}
	return durationOf(float64(n) / float64(b))
}

// maxWait bounds every computed wait, so that an absurdly low rate cannot
// overflow time.Duration (which would turn into a negative wait, "send
// now").
const maxWait = time.Hour

// durationOf converts seconds to a Duration, rounded up, at most maxWait.
func durationOf(sec float64) time.Duration {
	if !(sec < maxWait.Seconds()) {
		return maxWait
	}
	return time.Duration(math.Ceil(sec * float64(time.Second)))
}

// PacketState is what a [Controller] remembers about one sent packet. The
// sender stores the value returned by OnPacketSent with its own record of
// the packet (a KCP segment, a datagram) and hands it back, unchanged, in
// [AckEvent] when the packet is acknowledged or declared lost. This keeps
// the controller free of per-packet maps: the sender already owns that
// state.
//
// The fields are the delivery-rate sampler's per-packet state from
// draft-ietf-ccwg-bbr, section "Delivery Rate Samples".
type PacketState struct {
	SentTime      time.Time // when the packet was sent
	Bytes         int       // its size on the wire, the unit of every window
	Delivered     int64     // bytes delivered (acknowledged) when it was sent
	DeliveredTime time.Time // when Delivered last grew, as of its send
	FirstSentTime time.Time // send time of the packet that opened the sampling interval
	Lost          int64     // bytes declared lost when it was sent
	Inflight      int       // bytes in flight just after it was sent, itself included
	AppLimited    bool      // sent while the sender had less to send than the window allowed
}

// AckEvent is the outcome of one incoming acknowledgement.
type AckEvent struct {
	// Acked are the packets newly acknowledged, in send order.
	Acked []PacketState
	// Lost are the packets this acknowledgement made the sender declare
	// lost (packet or time threshold), in send order.
	Lost []PacketState
	// RTT is the sender's RTT sample for this acknowledgement, ack delay
	// already subtracted; zero means the controller takes now minus the
	// send time of the newest acknowledged packet. An AckEvent with only
	// RTT set feeds an RTT measured elsewhere, such as the handshake's
	// round trip, before any data was sent.
	RTT time.Duration
	// NoRTT says the acknowledgement gives no RTT sample at all: RTT is
	// zero and the send time of the newest packet acknowledged is
	// ambiguous (it was retransmitted, and the acknowledgement may be for
	// an earlier copy, which would read as a too short round trip).
	NoRTT bool
	// Inflight is the number of bytes still in flight after Acked and Lost
	// were removed.
	Inflight int
	// Spurious is the number of packets declared lost earlier (OnLoss or
	// Lost) that this acknowledgement shows were not: the sender
	// retransmitted them, and the acknowledgement is for the copy it had
	// declared lost (an echoed timestamp, as in RFC 3522's Eifel
	// detection). The bytes they were in flight are already accounted.
	// No controller acts on it yet: BBR taking them back out of its
	// round's loss count (so that they neither judge the round congested
	// nor raise the random-loss baseline) made gated sessions more
	// aggressive where those spurious losses were their only brake
	// (TestBottleneckRateStep's estimate fell to 3.1 Mbit/s;
	// TestStreamSendQueueBoundedByTime's unsent data waited 94-153 ms,
	// bound 80).
	Spurious int
}

// Controller is a congestion controller for one session. It is a pure state
// machine: it does no I/O, starts no goroutines and never reads the clock;
// every method that depends on time takes now, which must be monotonic and
// must not go backwards. A Controller is not safe for concurrent use; it
// belongs to the goroutine that owns its session.
//
// The sender calls:
//
//   - OnPacketSent for every packet that counts against the budget
//     (reliable data, retransmissions, datagrams, FEC parity, probes), and
//     stores the returned PacketState with the packet;
//   - OnAck once per incoming acknowledgement, with the states of the
//     packets it acknowledged and of those it made the sender declare lost;
//   - OnLoss for packets declared lost by a timer (RTO, probe timeout);
//   - OnAppLimited when it has nothing more to send although CanSend is
//     true, so that the resulting low delivery rate is not mistaken for a
//     narrower path;
//   - CanSend before each packet, and PacingRate to feed a [Pacer].
type Controller interface {
	// OnPacketSent records a packet of bytes sent at now. inflight is the
	// number of bytes in flight before this packet.
	OnPacketSent(now time.Time, bytes, inflight int) PacketState
	// OnAck processes one acknowledgement that arrived at now.
	OnAck(now time.Time, ev AckEvent)
	// OnLoss processes packets declared lost at now outside an
	// acknowledgement. inflight is the bytes still in flight after them.
	OnLoss(now time.Time, lost []PacketState, inflight int)
	// OnAppLimited marks the flow application-limited: the sender has no
	// more data although the window has room. inflight is the bytes in
	// flight.
	OnAppLimited(inflight int)
	// CanSend reports whether the congestion window allows one more
	// packet with inflight bytes already in flight.
	CanSend(inflight int) bool
	// CongestionWindow returns the window in bytes.
	CongestionWindow() int
	// PacingRate returns the rate at which packets should leave;
	// [Unlimited] for no pacing.
	PacingRate() Bandwidth
	// Stats returns a snapshot of the controller's estimates.
	Stats() Stats
}

// Stats is a snapshot of a [Controller]'s estimates, for ConnStats and for
// applications that pick a bitrate from the bandwidth estimate.
type Stats struct {
	// Algorithm is "bbr", "cubic" or "none".
	Algorithm string
	// State is the controller's state: for BBR "startup", "drain",
	// "probe_bw:down", "probe_bw:cruise", "probe_bw:refill",
	// "probe_bw:up" or "probe_rtt"; for Cubic "slow_start",
	// "congestion_avoidance" or "recovery"; "unlimited" for none.
	State string
	// Bandwidth is the estimated bottleneck bandwidth (BBR's model; for
	// Cubic a smoothed delivery rate; for none the largest delivery rate
	// seen). Zero before the first sample.
	Bandwidth Bandwidth
	// PacingRate is the current pacing rate.
	PacingRate Bandwidth
	// CongestionWindow is the current window in bytes.
	CongestionWindow int
	// MinRTT and SmoothedRTT are zero before the first RTT sample.
	MinRTT, SmoothedRTT time.Duration
	// Delivered and Lost count bytes acknowledged and declared lost.
	Delivered, Lost int64
	// Rounds counts packet-timed round trips.
	Rounds uint64
}
