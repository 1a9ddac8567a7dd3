package arq

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/cc"
	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/wire"
)

// Scheduling: the session admits written messages into the lanes' KCPs
// while the segments they hold in total stay below the send window (and
// the bytes within the caller's budget), taking lanes by descending
// Priority (ties: lower lane first). A message that is not admitted waits
// in its lane's backlog. So when the link cannot keep up, the free window
// goes to the most important lane, and each flush sends the lanes' packets
// in the same order.

// NoLimit is the budget that leaves admission to the send window alone.
const NoLimit = -1

// ErrTooLarge is DeliverLane's error for a message of the peer's larger
// than the receive buffer (the session's MaxMessageSize). DeliverLane's
// other errors are internal/wire's ErrLaneHeader and ErrLaneKind. Each
// means the peer broke the protocol, and the session ends.
var ErrTooLarge = errors.New("arq: peer sent a message larger than MaxMessageSize")

// Config is the fixed configuration of a session's lanes.
type Config struct {
	// Conv is the KCP conversation: the session ID.
	Conv uint32
	// Priorities has one entry per lane: the lane's priority (higher
	// first). At least one lane.
	Priorities []int
	// SendWindow bounds the segments the lanes' KCPs hold together;
	// RecvWindow is each lane's receive window, in segments.
	SendWindow, RecvWindow int
	// MaxFrag is the largest fragment number a data segment may carry.
	MaxFrag int
	// RecvSlack is how far past its advertised window a lane still takes
	// a data segment; RecvBudget bounds the data segments the lanes store
	// in total beyond the one each expects next (bounds.go).
	RecvSlack  uint32
	RecvBudget int
	// MaxFragments is KCP's per-message fragment limit, which sizes the
	// acked bitmap (bounds.go).
	MaxFragments int
	// TuneMTU is the KCP MTU the factory's tuning gives new KCPs.
	TuneMTU int
	// FullSlack, when positive, makes a received data segment exactly
	// FullSlack bytes shorter than this side's KCP MTU count as
	// full-size too, for the ACK policy (AckPolicy.OnData): the peer's
	// full segments may be that much smaller than this side's (uxp
	// reserves room for FEC framing only while it adds parity). Zero:
	// only a segment of at least the KCP MTU is full-size.
	FullSlack int
	// TickAlways makes the lanes run KCP's interval tick while anything
	// is unacknowledged, as kcp-go's own scheduling does (tests).
	TickAlways bool
	// SpuriousRTOFloor makes a spurious retransmission timeout raise the
	// lane's KCP timeout floor (congestion.go). Off by default: it
	// settles a rate drop with 1 KiB writes (TestBottleneckStepDrain) but
	// raised the queue drops of the 16 KiB-burst rate step
	// (TestBottleneckRateStep) from a median 0.3 % to 2-3 %.
	SpuriousRTOFloor bool
	// TimeoutHold postpones a segment's KCP retransmission timeout while
	// the acknowledgements show it still queued on the path (rtohold.go).
	// Needs a controller (SetController). Off by default.
	TimeoutHold bool
}

// Shard is what the lanes of one shard's sessions share: the KCP factory,
// the receive buffer and a scratch buffer. Owned by the shard goroutine.
type Shard struct {
	// KCP makes and drives the shard's KCPs.
	KCP *kcpx.Factory
	// RecvBuf takes one message out of a lane's KCP; a message longer
	// than it is ErrTooLarge.
	RecvBuf []byte

	seg    []byte                // a lane frame's segments when Input must change them
	expand []byte                // a lane frame's records expanded to segments (InputRecords)
	resend []byte                // a copy of segments sent more than once (emitCopy)
	bufs   []*[probeBufSize]byte // free tail copies (probe.go)
	reack  []byte                // a packet with repeated ACKs in front (reack.go)

	// Free backlog buffers (getMsgBuf), msgBufBytes of them in all.
	msgBufs     [][]byte
	msgBufBytes int
}

// Timing is what the session knows of the path's round trip.
type Timing struct {
	// SRTT and RTTVar are the heartbeat's smoothed RTT and its variation:
	// the expiry margin of deadline messages and the one-way estimate of
	// the delivery tracker. Zero when unknown.
	SRTT, RTTVar time.Duration
	// PTO is the probe timeout of tail-loss and window probes, zero when
	// no RTT is known (no tail-loss probes then).
	PTO time.Duration
	// AckDelay is what the peer's ACK thinning may add to the round trip
	// of a full-size segment (its ACK delay); zero when it acknowledges
	// every segment at once. A tail-loss probe of a full-size tail and a
	// window probe wait PTO + AckDelay; a shorter tail is acknowledged at
	// once (cc.AckPolicy), so its probe waits PTO.
	AckDelay time.Duration
	// MaxAckDelay is the longest the peer may hold an ACK (its ACK
	// delay's cap), whatever the RTT; zero when it acknowledges every
	// segment at once. The timeout hold allows for it (rtohold.go).
	MaxAckDelay time.Duration
}

// Sent describes segments handed to Output.
type Sent struct {
	// Data is set when the segments carry data (PUSH segments, skip
	// markers, probes): the caller sends them through FEC. ACKs and
	// window segments do not.
	Data bool
	// Bytes is the length of the segments, headers included.
	Bytes int
	// Retrans counts the data segments among them that were sent before
	// (KCP's retransmissions, tail-loss probes), and RetransBytes their
	// length.
	Retrans, RetransBytes int
	// Probe is set for a tail-loss probe, WndProbe for a zero-window
	// probe, Skip for the skip markers of a lapsed message (deadline.go),
	// sent outside KCP and not counted as retransmissions.
	Probe, WndProbe, Skip bool
}

// Ack describes acknowledgement progress on a lane.
type Ack struct {
	// Bytes is the message payload newly confirmed (una passed every
	// segment of those messages); Segments the segments una advanced by.
	Bytes, Segments int
	// RTT is a data round-trip sample (the tail's send to its ACK), zero
	// when this acknowledgement gives none.
	RTT time.Duration
}

// Event is a count Output.Event receives.
type Event uint8

const (
	// EvMessageSent: a message (not a skip message) entered a lane's KCP.
	EvMessageSent Event = iota
	// EvTimerFlush: a retransmission timeout made a lane flush.
	EvTimerFlush
	// EvMalformed: a malformed segment or message was dropped.
	EvMalformed
	// EvRecvBound: a data segment was left out by the receive bounds.
	EvRecvBound
	// EvRejected: KCP refused a message (cannot happen: the caller bounds
	// the size); it is dropped.
	EvRejected
)

// Output is the session side of the lanes: the root's Conn. Its methods
// are called on the owning goroutine, from inside the Lanes method that
// causes them; they must not call back into the Lanes.
type Output interface {
	// Output sends segs, KCP segments of lane, in a frame. The bytes are
	// valid only until it returns, and Output may write over them (it
	// turns them into the wire's records in place): a caller that sends
	// the same bytes again passes a copy (emitCopy).
	Output(lane int, segs []byte, s Sent)
	// Deliver hands a complete message of lane to the application, valid
	// until it returns. It reports whether delivery may go on: false
	// leaves the rest in KCP until the next Deliver call.
	Deliver(lane int, msg []byte) bool
	// Acked reports acknowledgement progress on lane.
	Acked(lane int, a Ack)
	// Latency reports the delivery latency of one of this side's
	// messages (latency.go).
	Latency(d time.Duration)
	// Event counts an event.
	Event(e Event)
	// Timing returns the current RTT inputs.
	Timing() Timing
	// PeerDeadline converts a local expiry to the peer's clock, in
	// microseconds, for a deadline message's header; 0 when unknown.
	PeerDeadline(expiry time.Time) uint64
	// LocalClock is this side's clock at now, in the microseconds the
	// peer's deadline messages carry.
	LocalClock(now time.Time) uint64
}

// Counters are a lane's statistics, written by the owner and read by any
// goroutine.
type Counters struct {
	MsgsOut, MsgsIn, Retrans, Expired, Skipped atomic.Uint64
	Queued                                     atomic.Int64
}

// Lanes is a session's set of lanes.
type Lanes struct {
	cfg    Config
	sh     *Shard
	out    Output
	acks   AckPolicy
	lanes  []*lane
	byPrio []*lane

	mtu        int // KCP MTU of the lanes' KCPs
	mss        int
	recvWndCap int // receive window while capped; 0: RecvWindow

	// The current call's time, for the output callback and deliveries,
	// and its KCP milliseconds, computed when first needed (kcpMs).
	now   time.Time
	ms    uint32
	msSet bool

	scratch     []byte // one lane message with its header, for KCP Send
	skipScratch []byte // skip markers (deadline.go)
	sent        Sent   // totals of the current Flush

	// Congestion accounting (congestion.go); cc nil: none.
	cc                 cc.Controller
	ccOverhead         int
	ccEpoch            time.Time // sentSlot's time base: the first time packed
	inflightBytes      int
	packetFirst        bool // the next data segment is the first of its packet
	ackedBuf, lostBuf  []cc.PacketState
	ackedRTT           time.Duration // the current Input's RTT from ACK timestamps
	ackedResent        bool          // the current Input acknowledged a retransmitted segment
	ackedSpurious      int           // the current Input's spurious retransmissions found
	lostSegs, sentSegs uint64
	spuriousSegs       uint64 // retransmissions shown spurious (congestion.go)
	// leastRTT is the least minimum RTT the controller ever reported
	// (pathMinRTT); zero before its first.
	leastRTT time.Duration
	reAcks   uint64 // ACK segments repeated (reack.go)
	// Timeout hold (rtohold.go).
	sendSeq uint32    // data segment copies sent, the last one's sentSlot.seq
	rack    rackState // the newest copy acknowledged
	// The timeout hold's counters; atomics, as the lanes' Counters, so
	// that tests and statistics may read them from any goroutine.
	heldTimeouts atomic.Uint64                      // retransmission timeouts postponed
	timeoutSegs  atomic.Uint64                      // data segments KCP's timeout resent
	holdFn       func(sn, ts uint32) (uint32, bool) // holdOne, bound once
	holdLane     *lane                              // holdOne's lane, during a walk
	holdMs       uint32                             // holdOne's KCP time, during a walk
	holdQuiet    time.Duration                      // holdOne's longest wait for an ACK, during a walk
	repeatSegs   atomic.Uint64                      // data segments received that KCP already had (bounds.go)
	noReAck      bool                               // tests: no ACK repetition

	// Per-segment admission (sendlimit.go).
	limit   bool // SetSendLimit
	newSegs int  // new segments the current event's flushes may send; -1: no limit
}

// lane is one lane's state.
type lane struct {
	id   int
	prio int
	ctr  Counters

	// arq is the lane's KCP: it sends this side's messages and receives
	// the peer's (input.go). Made on first use (kcp): nil until then, as
	// if idle, which saves its ~1 KB on lanes a session never uses.
	arq *kcp.KCP
	// outUna and outWnd are the una and wnd of the last segment arq sent:
	// the receive state forged segments carry.
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
	minExpiry time.Time       // earliest expiry not yet lapsed; zero = none
	lat       deliveryTracker // latency.go
	lapsed    int             // lapsed messages in inflight
	probe     tailProbe       // probe.go
	wnd       wndProbe        // wndprobe.go

	// acked marks the sns in [sndUna, sndUna+64×len) whose first ACK was
	// passed to arq; repeats are neutralised (bounds.go). ackWalks counts
	// the send-buffer segments those ACKs made arq walk, for tests.
	acked    []uint64
	ackWalks uint64

	sent sentRing // the last transmission of each segment in flight (congestion.go)

	reack reAck // ACKs to repeat (reack.go)

	// The earliest KCP time a retransmission timeout of the lane may fall
	// due, as the last timeout hold walk found it (rtohold.go).
	holdNext    uint32
	holdNextSet bool

	// A retransmission timeout floor raised by a spurious retransmission
	// (congestion.go): rtoFloor ms until rtoFloorUntil, then rtoDefault
	// (KCP's own) again; 0 when not raised.
	rtoFloor, rtoDefault uint32
	rtoFloorUntil        time.Time

	// Receive side.
	ackPending bool // arq holds ACKs (or a window answer) not yet flushed
	// rcvNext is the sn after the highest data segment taken (rcvSeen:
	// valid), for the ACK policy's out-of-order test.
	rcvNext uint32
	rcvSeen bool

	// Messages handed to arq, and taken out of it, mod 2^32 (the close
	// frame's counts).
	sndMsgs, rcvMsgs uint32

	trimAt time.Time // when the lane's grown memory goes back; zero = not armed (trim.go)
}

// laneMsg is one message waiting in a lane's backlog.
type laneMsg struct {
	expiry time.Time // zero = never
	data   []byte    // the message: buf[laneRoom:]
	buf    []byte    // data with laneRoom bytes in front, from the shard's free list; nil with data
	skip   bool      // abandoned before it was admitted: send a skip message
}

/* Implementation constants */
const (
	// laneRoom is the room for the lane message header in front of a
	// backlogged message (the longest header: kind, uvarint64 deadline,
	// uvarint32 length), so that KCP copies the message straight from
	// the backlog (admitOne).
	laneRoom = 1 + binary.MaxVarintLen64 + 5
	// msgBufsKeptBytes bounds the shard's free backlog buffers: enough
	// for a bulk sender's backlog to reuse its buffers rather than
	// allocate one per message, bounded per shard, not per session.
	msgBufsKeptBytes = 256 << 10
)

// getMsgBuf returns a buffer of length n from the shard's free list, or
// a new one.
func (sh *Shard) getMsgBuf(n int) []byte {
	if k := len(sh.msgBufs); k > 0 && cap(sh.msgBufs[k-1]) >= n {
		b := sh.msgBufs[k-1]
		sh.msgBufs[k-1] = nil
		sh.msgBufs = sh.msgBufs[:k-1]
		sh.msgBufBytes -= cap(b)
		return b[:n]
	}
	return make([]byte, n)
}

// putMsgBuf gives a backlog buffer back; beyond msgBufsKeptBytes the GC
// takes it.
func (sh *Shard) putMsgBuf(b []byte) {
	if b != nil && sh.msgBufBytes+cap(b) <= msgBufsKeptBytes {
		sh.msgBufs = append(sh.msgBufs, b)
		sh.msgBufBytes += cap(b)
	}
}

// laneSent is one message in a lane's KCP, by sn range.
type laneSent struct {
	firstSN, lastSN uint32
	size            int       // payload bytes
	expiry          time.Time // zero = never
	lapsed          bool      // past its expiry: its segments go out as skip markers
}

// New returns a session's lanes. kcpMTU is the KCP MTU of the lanes'
// KCPs (SetMTU changes it).
func New(cfg Config, sh *Shard, out Output, kcpMTU int) *Lanes {
	ls := new(Lanes)
	ls.Init(cfg, sh, out, kcpMTU)
	return ls
}

// Init is New for a Lanes the caller holds (a session embeds its own, to
// save an allocation). A Lanes must not be copied after Init: its KCPs'
// output callbacks point to it.
func (ls *Lanes) Init(cfg Config, sh *Shard, out Output, kcpMTU int) {
	*ls = Lanes{cfg: cfg, sh: sh, out: out, acks: Immediate{}, newSegs: -1}
	ls.lanes = make([]*lane, len(cfg.Priorities))
	for i, p := range cfg.Priorities {
		l := &lane{id: i, prio: p, outWnd: uint16(min(cfg.RecvWindow, 1<<16-1))}
		l.wnd.peerWnd = kcp.IKCP_WND_RCV // KCP's assumption until the peer says
		ls.lanes[i] = l
	}
	ls.byPrio = slices.Clone(ls.lanes)
	slices.SortStableFunc(ls.byPrio, func(a, b *lane) int { return cmp.Compare(b.prio, a.prio) })
	ls.mtu, ls.mss = kcpMTU, max(1, kcpMTU-wire.SegmentHeaderSize)
}

// fullSize reports whether a received data segment of n bytes is
// full-size (Config.FullSlack).
func (ls *Lanes) fullSize(n int) bool {
	return n >= ls.mtu || ls.cfg.FullSlack > 0 && n == ls.mtu-ls.cfg.FullSlack
}

// Len is the number of lanes.
func (ls *Lanes) Len() int { return len(ls.lanes) }

// SetAckPolicy replaces the ACK policy (Immediate by default).
func (ls *Lanes) SetAckPolicy(p AckPolicy) { ls.acks = p }

// Counters returns lane's statistics, safe to read from any goroutine.
func (ls *Lanes) Counters(lane int) *Counters { return &ls.lanes[lane].ctr }

// SetMTU changes the KCP MTU of the lanes' KCPs (path MTU discovery).
func (ls *Lanes) SetMTU(kcpMTU int) {
	ls.mtu = kcpMTU
	ls.mss = max(1, kcpMTU-wire.SegmentHeaderSize)
	for _, l := range ls.lanes {
		if l.arq != nil {
			ls.sh.KCP.SetMtu(l.arq, kcpMTU) // keeps the shard's flush buffer
		}
	}
}

// SetRecvWindowCap caps the receive window of the lanes' KCPs made from
// now on (n > 0: a session waiting in a Listener's backlog), or lifts the
// cap (n == 0): every lane's KCP then advertises RecvWindow.
func (ls *Lanes) SetRecvWindowCap(n int) {
	ls.recvWndCap = n
	if n > 0 {
		return
	}
	for _, l := range ls.lanes {
		if l.arq != nil {
			l.arq.WndSize(0, ls.cfg.RecvWindow)
		}
	}
}

// begin starts a call at now.
func (ls *Lanes) begin(now time.Time) {
	ls.now, ls.msSet = now, false
}

// kcpMs is the current call's time on KCP's millisecond clock: the one
// place the layer converts (kcpx.Ms). Lazily, since most calls (input,
// delivery, admission) never need it.
func (ls *Lanes) kcpMs() uint32 {
	if !ls.msSet {
		ls.ms, ls.msSet = kcpx.Ms(ls.now), true
	}
	return ls.ms
}

// kcp returns the lane's KCP, making it on first use.
func (ls *Lanes) kcp(l *lane) *kcp.KCP {
	if l.arq == nil {
		mtu := 0
		if ls.mtu != ls.cfg.TuneMTU {
			// The peer's packet size, or the path's, is smaller than ours.
			mtu = ls.mtu
		}
		l.arq = ls.sh.KCP.New(ls.cfg.Conv, func(buf []byte, size int) { ls.output(l, buf[:size]) }, mtu)
		l.acked = make([]uint64, ackedWords(ls.cfg.SendWindow, ls.cfg.MaxFragments))
		if ls.recvWndCap > 0 {
			l.arq.WndSize(0, ls.recvWndCap)
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

// Enqueue takes a message written on lane, with its expiry (zero: none).
// When no lane has a backlog, the send window has room and budget allows
// the message (NoLimit: no byte budget), it goes straight into the lane's
// KCP, which copies it, and Enqueue reports true; otherwise it is copied
// to the lane's backlog for Admit.
func (ls *Lanes) Enqueue(now time.Time, lane int, msg []byte, expiry time.Time, budget int) bool {
	return ls.EnqueueRoom(now, lane, msg, 0, expiry, budget)
}

// EnqueueRoom is Enqueue for the message buf[room:], where the lanes may
// overwrite buf[:room] (the caller's own header for it, already read):
// the lane message header goes there when it fits, so that KCP takes the
// message without another copy first.
func (ls *Lanes) EnqueueRoom(now time.Time, lane int, buf []byte, room int, expiry time.Time, budget int) bool {
	msg := buf[room:]
	ls.begin(now)
	l := ls.lanes[lane]
	l.queued += len(msg)
	if (budget < 0 || len(msg) <= budget) && ls.budget() > 0 {
		direct := true
		for _, o := range ls.lanes {
			direct = direct && len(o.backlog) == 0
		}
		if direct {
			ls.admitOne(l, buf, room, expiry, false)
			return true
		}
	}
	b := ls.sh.getMsgBuf(laneRoom + len(msg))
	copy(b[laneRoom:], msg)
	l.backlog = append(l.backlog, laneMsg{expiry: expiry, data: b[laneRoom:], buf: b})
	if !expiry.IsZero() && (l.minExpiry.IsZero() || expiry.Before(l.minExpiry)) {
		l.minExpiry = expiry
	}
	return false
}

// Head is the payload size of the message Admit would take first (the
// highest-priority lane's oldest backlogged message), 0 if none waits: a
// caller whose budget has room but less than this may raise it, so that a
// message larger than a congestion window still goes.
func (ls *Lanes) Head() int {
	for _, l := range ls.byPrio {
		if len(l.backlog) > 0 {
			return max(1, len(l.backlog[0].data))
		}
	}
	return 0
}

// WindowOpen reports whether the send window has room for another
// segment (Admit could take a message, budget allowing).
func (ls *Lanes) WindowOpen() bool { return ls.budget() > 0 }

// budget is how many more segments the lanes' KCPs may take.
func (ls *Lanes) budget() int {
	budget := ls.cfg.SendWindow
	for _, l := range ls.lanes {
		budget -= l.waitSnd()
	}
	return budget
}

// Admit moves messages from the lanes' backlogs into their KCPs, by
// priority, while the segments the KCPs hold stay below the send window
// and the payload admitted within budget bytes (NoLimit: no byte budget).
// A message larger than what is left of the budget waits, and so do the
// messages behind it on its lane. It returns the payload bytes admitted
// and whether anything (skip messages included) was.
func (ls *Lanes) Admit(now time.Time, budget int) (bytes int, admitted bool) {
	waiting := false
	for _, l := range ls.lanes {
		waiting = waiting || len(l.backlog) > 0
	}
	if !waiting {
		return 0, false // the common case: no need to count the window
	}
	ls.begin(now)
	segs := ls.budget()
	for _, l := range ls.byPrio {
		i := 0
		for ; i < len(l.backlog) && segs > 0; i++ {
			m := &l.backlog[i]
			if budget >= 0 && len(m.data) > budget-bytes {
				break
			}
			bytes += len(m.data)
			if m.buf != nil {
				segs -= ls.admitOne(l, m.buf, laneRoom, m.expiry, m.skip)
				ls.sh.putMsgBuf(m.buf)
			} else {
				segs -= ls.admitOne(l, nil, 0, m.expiry, m.skip)
			}
			*m = laneMsg{}
			admitted = true
		}
		l.backlog = l.backlog[i:]
		if len(l.backlog) == 0 {
			l.backlog = l.backlog[:0:0]
		}
	}
	return bytes, admitted
}

// admitOne hands one message, buf[room:] (nil for a skip message), with
// its lane message header, to the lane's KCP, and returns the segments it
// takes. The header goes into buf[:room] when it fits there, else the
// message is copied behind it into the scratch buffer.
func (ls *Lanes) admitOne(l *lane, buf []byte, room int, expiry time.Time, skip bool) int {
	data := buf[room:]
	var h [laneRoom]byte
	hdr := h[:0]
	switch {
	case skip:
		hdr = append(hdr, wire.LaneMsgSkip)
	case !expiry.IsZero():
		hdr = append(hdr, wire.LaneMsgDeadline)
		hdr = binary.AppendUvarint(hdr, ls.out.PeerDeadline(expiry))
		hdr = appendUvarint32(hdr, uint32(len(data)))
	default:
		hdr = append(hdr, wire.LaneMsgPlain)
	}
	var b []byte
	if len(hdr) <= room {
		b = buf[room-len(hdr):]
		copy(b, hdr)
	} else {
		b = append(append(ls.scratch[:0], hdr...), data...)
		ls.scratch = b[:0]
	}
	if ls.kcp(l).Send(b) < 0 {
		// Cannot happen: Write bounds the size. Drop it loudly rather
		// than wedge the lane.
		ls.out.Event(EvRejected)
		l.queued -= len(data)
		return 0
	}
	l.sndMsgs++
	frags := max(1, (len(b)+ls.mss-1)/ls.mss)
	l.inflight = append(l.inflight, laneSent{firstSN: l.sndSN, lastSN: l.sndSN + uint32(frags) - 1, size: len(data), expiry: expiry})
	l.sndSN += uint32(frags)
	l.lat.sent(frags, ls.now)
	if !expiry.IsZero() && (l.minExpiry.IsZero() || expiry.Before(l.minExpiry)) {
		l.minExpiry = expiry
	}
	if !skip {
		l.ctr.MsgsOut.Add(1)
		ls.out.Event(EvMessageSent)
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

// Flush sends what the lanes' KCPs hold (ACKs, then data), most
// important lane first, and returns what it sent.
func (ls *Lanes) Flush(now time.Time) Sent {
	ls.begin(now)
	ls.sent = Sent{}
	acked := false
	for _, l := range ls.byPrio {
		if l.arq == nil {
			continue
		}
		if ls.flushKCP(l, kcp.IKCP_FLUSH_FULL) {
			acked = acked || l.ackPending
			l.ackPending = false
		}
	}
	if acked {
		ls.acks.OnAckSent(now)
	}
	return ls.sent
}

// FlushAcks sends the ACKs the lanes owe, without data, if the ACK
// policy says they go now: the peer's probe timeout assumes
// acknowledgements are not held back for KCP's interval tick.
func (ls *Lanes) FlushAcks(now time.Time) {
	if !ls.acksOwed() || !ls.acks.AckNow(now) {
		return
	}
	ls.flushAcks(now)
}

func (ls *Lanes) acksOwed() bool {
	for _, l := range ls.lanes {
		if l.ackPending {
			return true
		}
	}
	return false
}

func (ls *Lanes) flushAcks(now time.Time) {
	ls.begin(now)
	acked := false
	for _, l := range ls.byPrio {
		if l.arq == nil || !l.ackPending {
			continue
		}
		if ls.flushKCP(l, kcp.IKCP_FLUSH_ACKONLY) {
			// Without the fast path (internal/kcpx) the ACKs may wait
			// for KCP's tick: ackPending stays, Deadline wakes then.
			l.ackPending = false
			acked = true
		}
	}
	if acked {
		ls.acks.OnAckSent(now)
	}
}

// Idle reports whether every message written has been acknowledged.
func (ls *Lanes) Idle() bool {
	for _, l := range ls.lanes {
		if len(l.backlog) > 0 || l.waitSnd() > 0 {
			return false
		}
	}
	return true
}

// Queued publishes each lane's payload bytes waiting or unacknowledged
// (Counters.Queued) and returns their total and the segments the lanes'
// KCPs hold for sending and have stored from the peer.
func (ls *Lanes) Queued() (bytes, segs int) {
	for _, l := range ls.lanes {
		bytes += l.queued
		l.ctr.Queued.Store(int64(l.queued))
		segs += l.waitSnd()
	}
	return bytes, segs + ls.RecvHeld()
}

// Sending returns the payload bytes the lanes hold for sending and the
// segments their KCPs hold for sending (for the close linger).
func (ls *Lanes) Sending() (bytes, segs int) {
	for _, l := range ls.lanes {
		bytes += l.queued
		segs += l.waitSnd()
	}
	return bytes, segs
}

// Backlog reports whether a lane holds messages not yet admitted to its
// KCP (its window, or the caller's budget, had no room), and their payload
// bytes. It walks the backlogs, which the callers keep short.
func (ls *Lanes) Backlog() (backlogged bool, bytes int) {
	for _, l := range ls.lanes {
		backlogged = backlogged || len(l.backlog) > 0
		for i := range l.backlog {
			bytes += len(l.backlog[i].data)
		}
	}
	return backlogged, bytes
}

// SentMessages and ReceivedMessages are the messages lane handed to its
// KCP and took out of it, mod 2^32: the counts of the close frame.
func (ls *Lanes) SentMessages(lane int) uint32     { return ls.lanes[lane].sndMsgs }
func (ls *Lanes) ReceivedMessages(lane int) uint32 { return ls.lanes[lane].rcvMsgs }

// Close releases what the lanes hold outside KCP (tail copies).
func (ls *Lanes) Close() {
	for _, l := range ls.lanes {
		ls.releaseProbe(l)
	}
}
