package uxp

import (
	"errors"
	"fmt"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/arq"
	"github.com/uxp-go/uxp/internal/wire"
)

// Lanes: several independent reliable, ordered message streams in one
// session. Each lane has its own KCP state machine, which both sends and
// receives, so a segment lost on one lane holds back only that lane.
// Lane 0 travels in frame type 1, every other lane in frame type 10 with a
// lane byte in front of the KCP segments. A message on a lane is a small
// header (the lane message header; internal/wire lane.go) followed by the
// application bytes. docs/protocol.md section 3.6 is normative.
//
// The lanes themselves (admission and priorities, backlog, probes,
// deadlines and skip markers, receive bounds, delivery latency, memory
// trimming) are internal/arq's Lanes, owned by the session's shard. This
// file is the glue: the public faces (LaneConfig, LaneStats, WriteLane,
// WriteWithDeadline), and laneIO, through which the lanes send frames,
// deliver messages and count (arq.Output).

/* Specification constants */
const (
	frameLane byte = 10 // body: lane (u8) | KCP segments

	laneIDSize = 1

	// Lane message kinds, the first byte of every lane message.
	laneMsgPlain    byte = 0 // payload follows
	laneMsgSkip     byte = 1 // abandoned message: nothing follows
	laneMsgDeadline byte = 2 // uvarint deadline, uvarint payload length, payload

	// laneHeaderMax is the longest lane message header: the kind, a
	// uvarint of a u64 and one of a u32.
	laneHeaderMax = 1 + 10 + 5
)

/* Implementation constants */
const (
	// maxLanes bounds Config.Lanes (the wire allows 256).
	maxLanes = 32
)

// LaneConfig describes one lane of Config.Lanes.
type LaneConfig struct {
	// Priority orders lanes when the send window is short: a lane with a
	// higher Priority has its messages admitted and sent first. Lanes with
	// equal Priority go in index order. Zero is a valid priority like any
	// other; negative values are allowed and rank below zero.
	Priority int

	// Deadline, if positive, is the default time limit of every message
	// written on this lane (Conn.WriteWithDeadline and
	// Conn.WriteLaneWithDeadline override it per message). A message not
	// delivered within its deadline is abandoned: the sender stops sending
	// it and the receiver skips it (internal/arq deadline.go). Zero
	// means messages on this lane have no deadline. Negative is invalid.
	Deadline time.Duration
}

func validateLanes(lanes []LaneConfig) error {
	if len(lanes) > maxLanes {
		return &ConfigError{Field: "Lanes", Reason: fmt.Sprintf("%d lanes exceed the limit of %d", len(lanes), maxLanes)}
	}
	for i, l := range lanes {
		if l.Deadline < 0 {
			return &ConfigError{Field: fmt.Sprintf("Lanes[%d].Deadline", i), Reason: fmt.Sprintf("negative (%v)", l.Deadline)}
		}
	}
	return nil
}

// LaneStats is a snapshot of one lane's counters.
type LaneStats struct {
	// Priority and Deadline are the lane's configuration.
	Priority int
	Deadline time.Duration
	// MessagesSent counts messages handed to the lane's KCP (skip messages
	// not included); MessagesReceived counts messages delivered to the
	// application.
	MessagesSent, MessagesReceived uint64
	// Retransmissions counts the lane's KCP data segments sent more than
	// once.
	Retransmissions uint64
	// Expired counts messages this side abandoned because their deadline
	// passed before the peer confirmed them. Some may have arrived anyway
	// (their acknowledgement was still on its way).
	Expired uint64
	// Skipped counts messages of the peer's that were not delivered here
	// because of their deadline: abandoned by the peer (skip markers), or
	// complete only after their deadline.
	Skipped uint64
	// QueuedBytes is the payload this lane holds for sending: waiting for
	// the window plus sent and not yet acknowledged.
	QueuedBytes int
}

// initLanes builds the session's lanes from the settings.
func (c *Conn) initLanes() {
	set := c.ep.set
	prios := make([]int, len(set.lanes))
	for i, l := range set.lanes {
		prios[i] = l.Priority
	}
	c.arq.Init(arq.Config{
		Conv:             c.id,
		Priorities:       prios,
		SendWindow:       set.sendWindow,
		RecvWindow:       set.recvWindow,
		MaxFrag:          set.maxFrag(),
		RecvSlack:        set.recvSlack(),
		RecvBudget:       set.recvBudgetSegs(),
		MaxFragments:     maxFragments,
		TuneMTU:          set.kcpMTU(),
		FullSlack:        fullSlack(set),
		TickAlways:       set.hooks.kcpTick,
		SpuriousRTOFloor: set.congestion.gate,                             // internal/arq congestion.go
		TimeoutHold:      set.congestion.gate && !set.hooks.noTimeoutHold, // internal/arq rtohold.go
	}, &c.shard.arq, (*laneIO)(c), c.kcpMTU())
	c.arq.SetAckPolicy((*sessionAcks)(c)) // cc_gate.go
	c.recU = make([]laneRecordU, len(set.lanes))
}

// tuneKCP applies the configuration to a new KCP.
func (s *settings) tuneKCP(k *kcp.KCP) {
	nodelay := 0
	if s.kcpNoDelay {
		nodelay = 1
	}
	nc := 1
	if s.kcpCongestion {
		nc = 0
	}
	k.NoDelay(nodelay, int(s.kcpInterval/time.Millisecond), s.kcpFastResend, nc)
	k.WndSize(s.sendWindow, s.recvWindow)
	k.SetMtu(s.kcpMTU())
}

// Lanes returns the number of lanes the session has (at least 1).
func (c *Conn) Lanes() int { return len(c.ep.set.lanes) }

// WriteLane queues msg as one reliable, ordered message on lane, with the
// lane's default deadline if it has one. Lane 0 is what Write uses. It
// behaves like Write otherwise; a lane outside [0, Lanes()) gets
// ErrNoSuchLane.
func (c *Conn) WriteLane(lane int, msg []byte) (int, error) {
	if lane < 0 || lane >= len(c.ep.set.lanes) {
		return 0, ErrNoSuchLane
	}
	return c.write(pendReliable, lane, c.laneDeadline(lane), msg)
}

// WriteWithDeadline queues msg on lane 0 like Write, with a time limit d
// from now. If the peer has not received it by then (as far as this side
// can tell from the RTT), it is abandoned: it is not sent again, and the
// peer skips it without holding back later messages (internal/arq
// deadline.go). d must be positive; otherwise WriteWithDeadline returns
// ErrBadDeadline.
func (c *Conn) WriteWithDeadline(msg []byte, d time.Duration) (int, error) {
	return c.WriteLaneWithDeadline(0, msg, d)
}

// WriteLaneWithDeadline is WriteWithDeadline on the given lane; the
// deadline d replaces the lane's default.
func (c *Conn) WriteLaneWithDeadline(lane int, msg []byte, d time.Duration) (int, error) {
	if lane < 0 || lane >= len(c.ep.set.lanes) {
		return 0, ErrNoSuchLane
	}
	if d <= 0 {
		return 0, ErrBadDeadline
	}
	return c.write(pendReliable, lane, c.ep.expiryIn(d), msg)
}

// laneDeadline is the expiry (endpoint.expiryIn) the lane's default gives a
// message written now, or 0.
func (c *Conn) laneDeadline(lane int) int64 { return laneDeadlineOf(c.ep, lane) }

// laneDeadlineOf is Conn.laneDeadline for an endpoint (broadcasts).
func laneDeadlineOf(ep *endpoint, lane int) int64 {
	if lane < len(ep.set.lanes) {
		if d := ep.set.lanes[lane].Deadline; d > 0 {
			return ep.expiryIn(d)
		}
	}
	return 0
}

// noteQueued publishes the payload bytes the lanes hold, for Write's
// backpressure check and Stats.
func (c *Conn) noteQueued() {
	total, segs := c.arq.Queued()
	c.kcpQueued.Store(int64(total))
	c.segBytes.Store(int64(segs) * kcpSegBuf)
	if fh, ok := c.handlerFor().(flowHandler); ok {
		fh.sendRoom()
	}
	c.checkWritable() // writable.go
}

// laneStats snapshots the per-lane counters.
func (c *Conn) laneStats() []LaneStats {
	out := make([]LaneStats, len(c.ep.set.lanes))
	for i, cfg := range c.ep.set.lanes {
		s := c.arq.Stats(i)
		out[i] = LaneStats{
			Priority:         cfg.Priority,
			Deadline:         cfg.Deadline,
			MessagesSent:     s.MessagesSent,
			MessagesReceived: s.MessagesReceived,
			Retransmissions:  s.Retransmissions,
			Expired:          s.Expired,
			Skipped:          s.Skipped,
			QueuedBytes:      s.QueuedBytes,
		}
	}
	return out
}

// laneFrameInput handles the body of a frame of type 10, buf[off:];
// buf[:off] is free room (laneInput).
func (c *Conn) laneFrameInput(buf []byte, off int, typ kcp.PacketType) {
	body := buf[off:]
	if len(body) < laneIDSize || int(body[0]) >= c.arq.Len() || body[0] == 0 {
		// Lane 0 has its own frame type; an unknown lane is a
		// configuration mismatch or garbage.
		c.drop(dropMalformed)
		return
	}
	c.laneInput(int(body[0]), buf, off+laneIDSize, typ)
}

// laneInput hands a lane's records, buf[off:], to the lanes, then
// delivers what became complete. buf[:off] is room the lanes may write
// the expanded segments into (arq.Lanes.InputRecords): the datagram's
// own header bytes, already authenticated and read, for a frame that
// came in its own datagram; 0 for one the FEC decoder or the fragment
// reassembly holds, which must stay as it is.
func (c *Conn) laneInput(lane int, buf []byte, off int, typ kcp.PacketType) {
	c.arq.InputRecords(c.shard.now, lane, buf, off, typ)
	c.laneDeliver(lane, false)
}

// deliverLanes runs laneDeliver on every lane.
func (c *Conn) deliverLanes(force bool) {
	for i := range c.arq.Len() {
		c.laneDeliver(i, force)
	}
}

// laneDeliver hands the lane's complete messages to the application.
// Unless force is set, it stops while a flowHandler reports its buffer
// full; the messages stay in KCP (bounded by the receive window, which KCP
// then advertises as closed) until the handler calls resumeRecv.
func (c *Conn) laneDeliver(lane int, force bool) {
	if !c.mayDeliver(force) {
		return
	}
	c.deliverForce = force
	err := c.arq.DeliverLane(c.shard.now, lane)
	switch {
	case err == nil:
	case errors.Is(err, arq.ErrTooLarge):
		c.terminate(&ProtocolError{Reason: "peer sent a message larger than MaxMessageSize"}, CloseProtocolError, "message larger than MaxMessageSize", true)
	case errors.Is(err, wire.ErrLaneHeader):
		c.terminate(&ProtocolError{Reason: "bad lane message header"}, CloseProtocolError, "bad lane message header", true)
	default:
		c.terminate(&ProtocolError{Reason: "bad lane message kind"}, CloseProtocolError, "bad lane message kind", true)
	}
}

// mayDeliver reports whether the application takes messages now.
func (c *Conn) mayDeliver(force bool) bool {
	if c.state == stateClosed {
		return false
	}
	if !force && c.state == stateEstablished {
		if fh, ok := c.handlerFor().(flowHandler); ok && fh.recvFull() {
			return false
		}
	}
	return true
}

// emitFrame sends a frame whose body is hdr || body: through FEC as an
// inner frame when FEC is on and viaFEC is set, else as its own transport
// packet. A receiver accepts every inner frame type directly too.
//
// A frame too large to be an FEC shard at the current packet size goes
// directly too, outside FEC, never fragmented or dropped: a segment
// KCP built before the lanes' KCP MTU came down for FEC (fec_sizing.go),
// or, with adaptive FEC, a datagram larger than a shard (MaxDatagramSize).
// Section 9 of docs/protocol.md lets a sender send any inner frame
// directly.
func (c *Conn) emitFrame(kind byte, hdr, body []byte, viaFEC bool) {
	if c.fec.enc == nil || !viaFEC {
		c.sendFrameTo(kind, hdr, body, c.remoteAP)
		return
	}
	if len(hdr)+len(body) > frameRoomSized(c.curMTU(), true) && c.fecShards() {
		c.fecDirect.Add(1)
		c.countFECData()
		c.sendFrameTo(kind, hdr, body, c.remoteAP)
		return
	}
	b := append(c.frameScratch[:0], kind)
	b = append(b, hdr...)
	b = append(b, body...)
	c.frameScratch = b[:0]
	c.fecOutput(b)
}

/* Implementation constants */
const (
	// probeGranularity is the smallest variance term of the probe
	// timeout: timer and scheduling jitter on a busy host, where the
	// measured rttvar of a sub-millisecond path would be too small;
	// RFC 9002's kGranularity. The shard's timer heap rounds every
	// deadline up to its 1 ms slot (shard.go timerCoalesce), so a probe
	// fires 1 to 2 ms after srtt. It was 2 ms, which with that rounding
	// put a lost request's repair at 2-3 ms on a loopback-class path and
	// a doubly lost one (request then reply, or a lost probe) at 5-8 ms:
	// the p99 of a 5 % loss request/response load.
	probeGranularity = time.Millisecond
)

// pto is the session's probe timeout (after RFC 9002) for a full-size
// segment: ptoParts together.
func (c *Conn) pto() time.Duration {
	pto, ackDelay := c.ptoParts()
	return pto + ackDelay
}

// ptoParts returns the session's probe timeout (after RFC 9002), srtt
// + max(4·rttvar, probeGranularity) of the data round trips the lanes
// measure (arq.Ack.RTT), or of the heartbeat's until the first, zero when
// no RTT is known yet; and what the peer's ACK thinning may add to it for
// a full-size segment (peerAckDelay; the lanes add it only for those,
// arq.Timing).
func (c *Conn) ptoParts() (pto, ackDelay time.Duration) {
	e := &c.dataRTT
	if e.samples == 0 {
		e = &c.hb.rttEstimator
	}
	if e.samples == 0 {
		return 0, 0
	}
	return e.srtt + max(4*e.rttvar, probeGranularity), c.peerAckDelay(e.srtt)
}

// laneIO is the Conn as the lanes' arq.Output: its methods run on the
// shard, inside the arq.Lanes call that causes them. A defined type
// rather than methods of Conn, which would be public.
type laneIO Conn

// Output frames a lane's segments: frame type 1 for lane 0, frame type 10
// with the lane byte for the others.
func (o *laneIO) Output(lane int, segs []byte, s arq.Sent) {
	c := (*Conn)(o)
	if s.Retrans > 0 {
		c.traffic.retrans.Add(uint64(s.Retrans))
		c.shard.traffic.retrans.Add(uint64(s.Retrans))
	}
	if s.Probe {
		c.traffic.probes.Add(1)
		c.shard.traffic.probes.Add(1)
	}
	if s.WndProbe {
		c.traffic.wndProbes.Add(1)
	}
	kind, hdr := wire.FrameKCP, []byte(nil)
	id := [laneIDSize]byte{byte(lane)}
	if lane != 0 {
		kind, hdr = wire.FrameLane, id[:]
	}
	// Segments without data (ACKs, window probes and answers) bypass FEC:
	// they are small, cumulative and resent by KCP's next flush anyway, so
	// parity over them would cost bytes and enlarge groups for nothing.
	// The wire carries them as compact records (emitKCP).
	var size int
	if h := c.ep.set.hooks.dropLane; h != nil && h(lane, segs) {
		size = c.dropKCP(lane, segs) // lost on the way: still paced
	} else {
		size = c.emitKCP(lane, kind, hdr, segs, s.Data)
	}
	if s.Data && !s.Probe {
		// A tail-loss probe is one packet after a probe timeout of
		// silence: the pacer has nothing to spread, and charged, it took
		// the tokens the next message needed (a request, its probe and
		// the next request within a millisecond waited for the pacer's
		// timer). It still counts in flight.
		c.paced(size + wire.FrameHeaderSize + laneIDSize)
	}
}

// Deliver passes one message to the application (laneDeliver).
func (o *laneIO) Deliver(lane int, msg []byte) bool {
	c := (*Conn)(o)
	c.traffic.msgsIn.Add(1)
	c.shard.traffic.msgsIn.Add(1)
	// After a local Close the application no longer wants data; keep
	// draining KCP so its window stays open while we linger.
	if c.state == stateEstablished {
		c.callLaneData(lane, msg)
	}
	return c.mayDeliver(c.deliverForce)
}

// Acked takes the data RTT samples, for the probe timeout.
func (o *laneIO) Acked(_ int, a arq.Ack) {
	if a.RTT > 0 {
		o.dataRTT.sample(a.RTT)
	}
}

// Latency records a message's delivery latency in the session's
// histogram (Server.Stats merges them: see connSet).
func (o *laneIO) Latency(d time.Duration) { o.latency.observe(d) }

// Event counts what the lanes report.
func (o *laneIO) Event(e arq.Event) {
	c := (*Conn)(o)
	switch e {
	case arq.EvMessageSent:
		c.traffic.msgsOut.Add(1)
		c.shard.traffic.msgsOut.Add(1)
	case arq.EvTimerFlush:
		c.shard.traffic.timerFlushes.Add(1)
	case arq.EvMalformed:
		c.drop(dropMalformed)
	case arq.EvRecvBound:
		c.drop(dropRecvBound)
	case arq.EvRejected:
		// Cannot happen: Write bounds the size.
		c.ep.log.Error("uxp: lane message rejected by KCP", "session", c.id)
	}
}

// Timing is the RTT inputs of the lanes: the heartbeat's estimate and the
// probe timeout.
func (o *laneIO) Timing() arq.Timing {
	c := (*Conn)(o)
	pto, ackDelay := c.ptoParts()
	t := arq.Timing{SRTT: c.hb.srtt, RTTVar: c.hb.rttvar, PTO: pto, AckDelay: ackDelay}
	if c.cong.gated {
		t.MaxAckDelay = c.cong.ackPol.MaxAckDelay
	}
	return t
}

// PeerDeadline converts an expiry to the peer's clock, in microseconds,
// for the lane message header; 0 when no estimate exists yet. The peer's
// clock is the value its last ping or pong carried (peerTS, arrived at
// peerAt), plus the time since, plus half the smoothed RTT.
func (o *laneIO) PeerDeadline(expiry time.Time) uint64 {
	c := (*Conn)(o)
	if c.peerAt.IsZero() || c.hb.srtt <= 0 {
		return 0
	}
	peer := int64(c.peerTS) + int64(expiry.Sub(c.peerAt)) + int64(c.hb.srtt/2)
	if peer <= 0 {
		return 0
	}
	return max(uint64(peer)/1000, 1)
}

// LocalClock is this side's clock in the microseconds deadline messages
// carry: the heartbeat's (since the endpoint's epoch).
func (o *laneIO) LocalClock(now time.Time) uint64 { return (*Conn)(o).clock(now) / 1000 }
