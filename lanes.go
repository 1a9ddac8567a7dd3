package uxp

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/kcpx"
)

// Lanes: several independent reliable, ordered message streams in one
// session. Each lane has its own KCP state machine, which both sends and
// receives, so a segment lost on one lane holds back only that lane.
// Lane 0 travels in frame type 1, every other lane in frame type 10 with a
// lane byte in front of the KCP segments. A message on a lane is a small
// header (the lane message header; see lane_arq.go) followed by the
// application bytes. docs/protocol.md section 3.6 is normative.
//
// Scheduling: the session admits written messages into the lanes' KCPs
// while the segments they hold in total stay below KCP.SendWindow, taking
// lanes by descending Priority (ties: lower lane first). A message that is
// not admitted waits in its lane's backlog, owned by the shard. So when the
// link cannot keep up, the free window goes to the most important lane, and
// each flush sends the lanes' packets in the same order.

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
	// it and the receiver skips it (deadline.go). Zero means messages on
	// this lane have no deadline. Negative is invalid.
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

// laneCounters are a lane's statistics, written by the shard and read by
// Conn.Stats.
type laneCounters struct {
	msgsOut, msgsIn, retrans, expired, skipped atomic.Uint64
	queued                                     atomic.Int64
}

// laneMsg is one reliable message waiting in a lane's backlog.
type laneMsg struct {
	expiry int64 // unix ns after which it is abandoned; 0 = never
	data   []byte
	skip   bool // abandoned before it was admitted: send a skip marker
}

// laneSent is one message in a lane's KCP, by sn range.
type laneSent struct {
	firstSN, lastSN uint32
	size            int   // payload bytes
	expiry          int64 // 0 = never
	lapsed          bool  // past its expiry: its segments go out as skip markers
}

// lane is one lane's state, owned by the shard.
type lane struct {
	id  int
	cfg LaneConfig
	ctr laneCounters

	// arq is the lane's KCP state machine: it sends this side's messages
	// and receives the peer's (lane_arq.go). It is made when the lane is
	// first used (laneKCP): nil until then, as if idle, which saves its
	// ~1 KB (internal/kcpx; ~20 KB as kcp-go makes it) on lanes a session
	// never uses.
	arq *kcp.KCP
	// outUna and outWnd are the una and wnd of the last segment arq sent:
	// the receive state skip markers carry (deadline.go).
	outUna uint32
	outWnd uint16

	// Send side.
	sndSN     uint32          // sn arq will give its next segment
	sndUna    uint32          // every sn below this is acknowledged
	maxSentSN uint32          // highest sn sent, to count retransmissions
	sentData  bool            // maxSentSN is valid
	backlog   []laneMsg       // written, not admitted yet
	inflight  []laneSent      // admitted, not acknowledged, by sn
	queued    int             // payload bytes in backlog and inflight
	minExpiry int64           // earliest expiry not yet lapsed; 0 = none
	lat       deliveryTracker // delivery latency samples (stats_latency.go)
	lapsed    int             // lapsed messages in inflight
	probe     tailProbe       // probe.go
	wnd       wndProbe        // wndprobe.go

	// acked marks the sns in [sndUna, sndUna+64×len) whose first ACK was
	// passed to arq; repeats are neutralised (lane_bounds.go). ackWalks
	// counts the send-buffer segments those ACKs made arq walk, for tests.
	acked    []uint64
	ackWalks uint64

	// Receive side.
	ackPending bool // arq holds ACKs (or a window answer) not yet flushed

	// Messages handed to arq, and taken out of it, mod 2^32: the close
	// frame carries sndMsgs, and the receiver checks its rcvMsgs against
	// it (conn_close.go).
	sndMsgs, rcvMsgs uint32

	// trimAt is when the lane's grown memory goes back, in unix ms mod
	// 2^32; 0 = not armed (lane_trim.go).
	trimAt uint32
}

// initLanes builds the session's lanes from the settings.
func (c *Conn) initLanes() {
	cfgs := c.ep.set.lanes
	c.lanes = make([]*lane, len(cfgs))
	for i, cfg := range cfgs {
		l := &lane{id: i, cfg: cfg, outWnd: uint16(min(c.ep.set.recvWindow, 1<<16-1))}
		l.wnd.peerWnd = kcp.IKCP_WND_RCV // KCP's assumption until the peer says
		c.lanes[i] = l
	}
	c.lanesByPrio = slices.Clone(c.lanes)
	slices.SortStableFunc(c.lanesByPrio, func(a, b *lane) int { return cmp.Compare(b.cfg.Priority, a.cfg.Priority) })
}

// laneKCP returns the lane's KCP, making it on first use.
func (c *Conn) laneKCP(l *lane) *kcp.KCP {
	if l.arq == nil {
		l.arq = c.newLaneKCP(c.id, c.laneKCPOutput(l))
		l.acked = make([]uint64, ackedWords(c.ep.set.sendWindow))
		if c.recvWndCap > 0 {
			l.arq.WndSize(0, c.recvWndCap)
		}
	}
	return l.arq
}

// waitSnd is how many segments the lane's KCP holds for sending.
func (l *lane) waitSnd() int {
	if l.arq == nil {
		return 0
	}
	return l.arq.WaitSnd()
}

// newLaneKCP makes a KCP state machine with the session's tuning, from
// the shard's factory (internal/kcpx).
func (c *Conn) newLaneKCP(conv uint32, out func([]byte, int)) *kcp.KCP {
	mtu := 0
	if c.curMTU() != c.ep.set.mtu {
		// The peer's packet size, or the path's, is smaller than ours
		// (negotiate.go, pmtud.go).
		mtu = c.kcpMTU()
	}
	return c.shard.kcp.New(conv, out, mtu)
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

// laneDeadline is the absolute deadline (unix ns) the lane's default gives
// a message written now, or 0.
func (c *Conn) laneDeadline(lane int) int64 {
	if d := c.ep.set.lanes[lane].Deadline; d > 0 {
		return time.Now().Add(d).UnixNano()
	}
	return 0
}

// enqueueLane takes a written message on the shard, in pump. When no lane
// has a backlog and the send window has room, the message goes straight
// into its lane's KCP (which copies it), and enqueueLane reports true;
// otherwise it is copied to the lane's backlog for admitLanes.
func (c *Conn) enqueueLane(l *lane, msg []byte, expiry int64) bool {
	l.queued += len(msg)
	if budget := c.laneBudget(); budget > 0 {
		direct := true
		for _, o := range c.lanes {
			direct = direct && len(o.backlog) == 0
		}
		if direct {
			c.admitOne(l, msg, expiry, false)
			return true
		}
	}
	l.backlog = append(l.backlog, laneMsg{expiry: expiry, data: append([]byte(nil), msg...)})
	if expiry != 0 && (l.minExpiry == 0 || expiry < l.minExpiry) {
		l.minExpiry = expiry
	}
	return false
}

// laneBudget is how many more segments the lanes' KCPs may take.
func (c *Conn) laneBudget() int {
	budget := c.ep.set.sendWindow
	for _, l := range c.lanes {
		budget -= l.waitSnd()
	}
	return budget
}

// admitLanes moves messages from the lanes' backlogs into their KCPs, by
// priority, while the segments the KCPs hold stay below the send window.
// It reports whether anything was admitted.
func (c *Conn) admitLanes() bool {
	waiting := false
	for _, l := range c.lanes {
		waiting = waiting || len(l.backlog) > 0
	}
	if !waiting {
		return false // the common case: no need to count the window
	}
	budget := c.laneBudget()
	admitted := false
	for _, l := range c.lanesByPrio {
		i := 0
		for ; i < len(l.backlog) && budget > 0; i++ {
			m := &l.backlog[i]
			budget -= c.admitOne(l, m.data, m.expiry, m.skip)
			*m = laneMsg{}
			admitted = true
		}
		l.backlog = l.backlog[i:]
		if len(l.backlog) == 0 {
			l.backlog = l.backlog[:0:0]
		}
	}
	return admitted
}

// admitOne hands one message, with its lane message header, to the lane's
// KCP, and returns the segments it takes.
func (c *Conn) admitOne(l *lane, data []byte, expiry int64, skip bool) int {
	b := c.laneScratch[:0]
	switch {
	case skip:
		b = append(b, laneMsgSkip)
	case expiry != 0:
		b = append(b, laneMsgDeadline)
		b = binary.AppendUvarint(b, c.peerDeadline(expiry))
		b = appendUvarint32(b, uint32(len(data)))
	default:
		b = append(b, laneMsgPlain)
	}
	b = append(b, data...)
	c.laneScratch = b[:0]
	if c.laneKCP(l).Send(b) < 0 {
		// Cannot happen: Write bounds the size. Drop it loudly rather
		// than wedge the lane.
		c.ep.log.Error("uxp: lane message rejected by KCP", "session", c.id, "lane", l.id, "size", len(b))
		l.queued -= len(data)
		return 0
	}
	l.sndMsgs++
	mss := c.mss()
	frags := max(1, (len(b)+mss-1)/mss)
	l.inflight = append(l.inflight, laneSent{firstSN: l.sndSN, lastSN: l.sndSN + uint32(frags) - 1, size: len(data), expiry: expiry})
	l.sndSN += uint32(frags)
	l.lat.sent(frags, c.shard.now)
	if expiry != 0 && (l.minExpiry == 0 || expiry < l.minExpiry) {
		l.minExpiry = expiry
	}
	if !skip {
		l.ctr.msgsOut.Add(1)
		c.traffic.msgsOut.Add(1)
		c.shard.traffic.msgsOut.Add(1)
	}
	return frags
}

func appendUvarint32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// flushLanes sends what the lanes' KCPs hold (ACKs, then data), most
// important lane first.
func (c *Conn) flushLanes() {
	for _, l := range c.lanesByPrio {
		if l.arq == nil || c.shard.kcp.Flush(l.arq, kcp.IKCP_FLUSH_FULL) {
			l.ackPending = false
		}
	}
}

// flushAcks sends the ACKs the lanes owe, without data: the peer's probe
// timeout assumes acknowledgements are not held back for KCP's interval
// tick.
func (c *Conn) flushAcks() {
	for _, l := range c.lanesByPrio {
		if l.arq == nil || !l.ackPending || c.shard.kcp.Flush(l.arq, kcp.IKCP_FLUSH_ACKONLY) {
			// Without the fast path (internal/kcpx) the ACKs may wait
			// for KCP's tick: ackPending stays, lanesDeadline wakes then.
			l.ackPending = false
		}
	}
}

// lanesIdle reports whether every message written has been acknowledged.
func (c *Conn) lanesIdle() bool {
	for _, l := range c.lanes {
		if len(l.backlog) > 0 || l.waitSnd() > 0 {
			return false
		}
	}
	return true
}

// noteQueued publishes the payload bytes the lanes hold, for Write's
// backpressure check and Stats.
func (c *Conn) noteQueued() {
	total := 0
	for _, l := range c.lanes {
		total += l.queued
		l.ctr.queued.Store(int64(l.queued))
	}
	c.kcpQueued.Store(int64(total))
	segs := c.recvHeldSegs()
	for _, l := range c.lanes {
		segs += l.waitSnd()
	}
	c.segBytes.Store(int64(segs) * kcpSegBuf)
	if fh, ok := c.handlerFor().(flowHandler); ok {
		fh.sendRoom()
	}
	c.checkWritable() // writable.go
}

// laneTimers runs the lanes' KCP clocks: retransmissions and delayed ACKs.
// A lane flushes only when it has work due (internal/kcpx SendWork): KCP's interval
// tick while ACKs are owed or segments wait for window, else only once its
// earliest retransmission time has come. So the cost of a wake is the
// segments it sends plus one pass over those in flight.
func (c *Conn) laneTimers(now time.Time) {
	c.expireLanes(now)
	if c.admitLanes() {
		c.flushLanes()
	}
	for _, l := range c.lanesByPrio {
		c.probeTimer(l, now)
		c.wndProbeTimer(l, now)
		if l.arq == nil {
			continue
		}
		if _, _, tick := c.laneSendWork(l); (l.ackPending || tick) && kcpDue(l.arq) {
			// Update flushes everything on KCP's interval tick. Check may
			// also be due for a retransmission before that tick, when
			// Update does nothing: that is handled below.
			l.arq.Update()
			if l.ackPending && c.shard.kcp.Flush(l.arq, kcp.IKCP_FLUSH_ACKONLY) {
				l.ackPending = false
			}
		}
		if at, has, _ := c.laneSendWork(l); has && int32(at-kcpx.Now()) <= 0 {
			// A retransmission timeout has come: flush now rather than
			// wait for KCP's tick (which the lane no longer runs while
			// it only waits for ACKs).
			if c.shard.kcp.Flush(l.arq, kcp.IKCP_FLUSH_FULL) {
				l.ackPending = false
			}
			c.shard.traffic.timerFlushes.Add(1)
		}
	}
}

func kcpDue(k *kcp.KCP) bool { return int32(k.Check()-kcpx.Now()) <= 0 }

// lanesDeadline is the earliest lane timer: a KCP clock or an expiry.
// While a lane only waits for ACKs, its KCP clock is the earliest
// retransmission time of its segments in flight, not KCP's interval tick
// (internal/kcpx SendWork).
func (c *Conn) lanesDeadline(now time.Time) time.Time {
	var d time.Time
	kcpAt := func(ms uint32) time.Time {
		wait := time.Duration(int32(ms-kcpx.Now())) * time.Millisecond
		return now.Add(max(wait, time.Millisecond))
	}
	margin := c.expiryMargin()
	for _, l := range c.lanes {
		if l.arq != nil {
			switch at, has, tick := c.laneSendWork(l); {
			case l.ackPending || tick:
				d = earlier(d, kcpAt(l.arq.Check()))
			case has:
				d = earlier(d, kcpAt(at))
			}
		}
		if l.minExpiry != 0 {
			d = earlier(d, time.Unix(0, l.minExpiry).Add(-margin))
		}
		d = earlier(d, l.probe.at)
		d = earlier(d, l.wnd.at)
		d = earlier(d, c.laneTrimDeadline(l, now))
	}
	return d
}

// laneStats snapshots the per-lane counters.
func (c *Conn) laneStats() []LaneStats {
	out := make([]LaneStats, len(c.lanes))
	for i, l := range c.lanes {
		out[i] = LaneStats{
			Priority:         l.cfg.Priority,
			Deadline:         l.cfg.Deadline,
			MessagesSent:     l.ctr.msgsOut.Load(),
			MessagesReceived: l.ctr.msgsIn.Load(),
			Retransmissions:  l.ctr.retrans.Load(),
			Expired:          l.ctr.expired.Load(),
			Skipped:          l.ctr.skipped.Load(),
			QueuedBytes:      int(l.ctr.queued.Load()),
		}
	}
	return out
}

// laneSendWork is the shard factory's SendWork for a lane's KCP, or the
// old tick while anything is unacknowledged: under the testKCPTick knob,
// and on a lane with deadline messages in flight.
func (c *Conn) laneSendWork(l *lane) (at uint32, has, tick bool) {
	if c.ep.set.testKCPTick || l.minExpiry != 0 || l.lapsed > 0 {
		// A lane with deadline messages in flight keeps KCP's interval
		// tick: a lost segment of such a message must be resent (as a
		// skip marker once lapsed) within the deadline, and waking only
		// at the segment's own RTO let a frame behind a lost one wait
		// past its deadline when both copies of its skip marker were
		// lost too (TestDeadlineFrames, at some phases of KCP's clock).
		// Lanes without deadlines, the bulk of a server's sessions, wake
		// at their real retransmission time.
		return 0, false, l.arq.WaitSnd() > 0
	}
	return c.shard.kcp.SendWork(l.arq)
}
