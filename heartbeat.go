package uxp

import (
	"time"

	"github.com/uxp-go/uxp/internal/wire"
)

// heartbeat is a session's liveness state: when to send the next ping, when
// the session counts as idle, and the RTT estimate from ping/pong pairs.
// Pure: the owner passes now. A heartbeat is a state with a deadline, not a
// goroutine or a ticker; the shard's timer heap wakes the session.
type heartbeat struct {
	interval time.Duration // <= 0: never ping
	idle     time.Duration // <= 0: never idle out
	pinger   bool          // clients ping; servers only answer

	lastRecv time.Time // last authenticated packet from the peer
	lastSent time.Time // last packet sent to the peer
	skipped  int       // pings skipped in a row (pingDue)
	nextPing time.Time // zero when not pinging
	// confirmed is set by the first pong. Until then the client pings every
	// confirmInterval, because its first ping is also the key confirmation
	// the server waits for before it announces the session.
	confirmed bool
	// echoes: the clock values this side sent in pings (client) or pongs
	// (server), which the peer echoes back for an RTT sample.
	echoes echoRange

	rttEstimator
}

// rttEstimator smooths round-trip samples as RFC 6298 does. The zero value
// has no sample yet. Samples are clamped to [0, maxRTTSample], so srtt and
// rttvar stay in that range and the arithmetic here and in their users
// (probe timeout, expiry margin, deadline estimates) cannot overflow,
// whatever a peer claims.
type rttEstimator struct {
	srtt, rttvar time.Duration
	samples      uint64
}

// sample takes one round-trip measurement; a negative one is ignored, one
// above maxRTTSample counts as maxRTTSample.
func (e *rttEstimator) sample(rtt time.Duration) {
	if rtt < 0 {
		return
	}
	rtt = min(rtt, maxRTTSample)
	if e.samples == 0 {
		e.srtt, e.rttvar = rtt, rtt/2
	} else {
		d := e.srtt - rtt
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.samples++
}

/* Implementation constants */
const (
	// confirmInterval is how often an unconfirmed client re-sends its
	// first ping.
	confirmInterval = 250 * time.Millisecond
	// maxSkippedPings bounds the pings a busy session skips in a row, so
	// that its heartbeat RTT and the peers' clock offset stay fresh.
	maxSkippedPings = 3
	// maxRTTSample caps one round-trip sample. A real path is far below
	// it; it exists so that 7*srtt and 4*rttvar cannot overflow.
	maxRTTSample = time.Minute
	// maxPeerClock bounds a clock value (ns since the peer's epoch) in a
	// ping or pong: 2^62 ns is 146 years of uptime. A larger one is
	// malformed; the bound keeps int64 arithmetic on it from wrapping.
	maxPeerClock = 1 << 62
)

// echoRange is the range of this side's own clock values (heartbeat.go
// clock) that it sent in pings (client) or pongs (server): the only values
// a peer can honestly echo. An echo outside it is malformed.
type echoRange struct {
	first, last uint64
	any         bool // a value was sent
}

func (r *echoRange) sent(ts uint64) {
	if !r.any {
		r.first, r.any = ts, true
	}
	r.last = ts
}

func (r *echoRange) holds(ts uint64) bool {
	return r.any && ts >= r.first && ts <= r.last
}

func newHeartbeat(interval, idle time.Duration, pinger bool, now time.Time) heartbeat {
	h := heartbeat{interval: interval, idle: idle, pinger: pinger, lastRecv: now}
	if pinger {
		// Ping at once, even with heartbeats disabled: the first ping
		// confirms the keys to the server.
		h.nextPing = now
	}
	return h
}

// received records an authenticated packet from the peer.
func (h *heartbeat) received(now time.Time) { h.lastRecv = now }

// sent records a packet sent to the peer.
func (h *heartbeat) sent(now time.Time) { h.lastSent = now }

// pingDue reports whether a ping should be sent now, and if so schedules
// the next one. A confirmed session that both sent and heard a packet
// within the last interval skips the ping (up to maxSkippedPings in a
// row): its traffic already keeps both idle timers and the NAT binding
// alive, as QUIC sends PING only when a connection would otherwise be
// idle. For a client sending one message a second that is a quarter of
// its packets, and of the server's.
func (h *heartbeat) pingDue(now time.Time) bool {
	if h.nextPing.IsZero() || now.Before(h.nextPing) {
		return false
	}
	if h.confirmed && h.interval > 0 && h.skipped < maxSkippedPings &&
		now.Sub(h.lastSent) < h.interval && now.Sub(h.lastRecv) < h.interval {
		h.skipped++
		h.nextPing = now.Add(h.interval)
		return false
	}
	h.skipped = 0
	switch {
	case !h.confirmed && h.interval > 0:
		h.nextPing = now.Add(min(h.interval, confirmInterval))
	case !h.confirmed:
		h.nextPing = now.Add(confirmInterval)
	case h.interval > 0:
		h.nextPing = now.Add(h.interval)
	default:
		h.nextPing = time.Time{}
	}
	return true
}

// idleExpired reports whether nothing arrived for the idle timeout.
func (h *heartbeat) idleExpired(now time.Time) bool {
	return h.idle > 0 && now.Sub(h.lastRecv) >= h.idle
}

// deadline is the earliest time the heartbeat needs attention.
func (h *heartbeat) deadline() time.Time {
	var d time.Time
	if h.idle > 0 {
		d = h.lastRecv.Add(h.idle)
	}
	if !h.nextPing.IsZero() && (d.IsZero() || h.nextPing.Before(d)) {
		d = h.nextPing
	}
	return d
}

// pong records the answer to a ping sent at sent, updating the smoothed RTT
// as RFC 6298 does.
func (h *heartbeat) pong(sent, now time.Time) {
	if !h.confirmed && h.pinger {
		h.confirmed = true
		h.nextPing = time.Time{}
		if h.interval > 0 {
			h.nextPing = sent.Add(h.interval)
		}
	}
	h.sample(now.Sub(sent))
}

// Heartbeat frames. A ping carries the client's clock, plus the server
// timestamp from the last pong and how long the client held it, which gives
// the server an RTT sample too:
//
//	ping: client time (u64 ns) | last server time (u64 ns) | held for (u64 ns)
//	pong: client time echoed (u64 ns) | server time (u64 ns)
//
// The codecs are wire.Ping and wire.Pong.

// clock is this side's clock on the wire: nanoseconds since the endpoint's
// epoch (endpoint.mono, timebase.go).
func (c *Conn) clock(now time.Time) uint64 { return uint64(c.ep.mono(now)) }

func (c *Conn) sendPing(now time.Time) {
	ts := c.clock(now)
	p := wire.Ping{Clock: ts}
	if !c.lastPong.IsZero() {
		p.LastPong, p.Held = c.lastPongTS, uint64(now.Sub(c.lastPong))
	}
	var b [wire.PingSize]byte
	wire.PutPing(b[:], p)
	c.hb.echoes.sent(ts)
	c.sendFrame(wire.FramePing, b[:])
}

// answerPing answers a ping and takes the server's RTT sample from it.
// Every value in it comes from the peer, so each is checked against what
// this session can have seen (docs/protocol.md section 5.3): its clock and
// its hold time below maxPeerClock, and the echoed server time one this
// session sent in a pong. A ping that fails one of these is dropped
// (Drops.Malformed) and not answered.
//
// A hold time longer than the time since that pong is NOT a reason to
// drop the ping. An honest client sends one: each side reads its clock
// once per event (shard.loop), so a pong the client takes from its queue
// late in a long event is stamped when that event began, possibly before
// the server even sent it, and a ping the server takes late in an event
// is stamped early too. The two errors add up to the length of an event
// (microseconds to milliseconds under load; see the issue 18 idle soak)
// and exceed the round trip on a fast path. Every later ping echoes the
// same pong until one is answered, with the same error, so dropping them
// left the client deaf until its idle timeout. Such a ping is answered
// and gives no sample: the sample stays between zero and the age of the
// pong it answers, whatever the peer writes.
func (c *Conn) answerPing(ping wire.Ping, now time.Time) {
	peer, sent, held := ping.Clock, ping.LastPong, ping.Held
	clock := c.clock(now)
	if peer >= maxPeerClock || held >= maxPeerClock || sent != 0 && !c.hb.echoes.holds(sent) {
		c.drop(dropMalformed)
		return
	}
	var b [wire.PongSize]byte
	wire.PutPong(b[:], wire.Pong{Echo: peer, Clock: clock})
	c.hb.echoes.sent(clock)
	c.sendFrame(wire.FramePong, b[:])
	c.peerTS, c.peerAt = peer, now // laneIO.PeerDeadline
	// Server-side RTT: now - when we sent that pong - how long the client
	// sat on it, taken only when it lies in [0, clock-sent]: a hold time
	// beyond the pong's age is skew (above) or a forgery, and gives none.
	if sent != 0 && sent <= clock && held <= clock-sent {
		rtt := time.Duration(clock - sent - held)
		c.hb.pong(now.Add(-rtt), now)
		c.publishRTT()
		c.congestionRTT(rtt, now)
		c.reportBandwidth(now)
	}
}

// takePong takes a client's RTT sample. The echoed time must be one of
// this session's pings and the server's clock below maxPeerClock; a pong
// that fails is dropped (Drops.Malformed).
func (c *Conn) takePong(pong wire.Pong, now time.Time) {
	echo, peer := pong.Echo, pong.Clock
	clock := c.clock(now)
	if !c.hb.echoes.holds(echo) || echo > clock || peer >= maxPeerClock {
		c.drop(dropMalformed)
		return
	}
	rtt := time.Duration(clock - echo)
	c.hb.pong(now.Add(-rtt), now)
	c.lastPong = now
	c.lastPongTS = peer
	c.peerTS, c.peerAt = c.lastPongTS, now // laneIO.PeerDeadline
	c.publishRTT()
	c.congestionRTT(rtt, now)
	c.reportBandwidth(now)
}

func (c *Conn) publishRTT() {
	c.rtt.Store(int64(c.hb.srtt))
	c.rttVar.Store(int64(c.hb.rttvar))
}
