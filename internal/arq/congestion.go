package arq

import (
	"math"
	"time"

	"github.com/uxp-go/uxp/internal/cc"
)

// Congestion accounting. When the session gives its lanes a congestion
// controller (SetController), every data segment they emit is reported to
// it (OnPacketSent) and the PacketState it returns is kept beside the
// segment, in a ring per lane indexed by sn (sentRing): the state of the
// segment's last transmission. Acknowledgements build the controller's
// AckEvents from what Input parses: an ACK segment acknowledges its sn, a
// una every sn below it. A segment KCP sends again (fast retransmit or
// RTO) declares its previous transmission lost (OnLoss, at once, before
// the new copy's OnPacketSent); a tail-loss probe replaces the state
// without declaring a loss (it is sent on a timer, not on evidence). The
// lanes keep the bytes in flight across all lanes (BytesInFlight): what
// was sent, neither acknowledged nor declared lost.
//
// A retransmission can be spurious: KCP's timeout fires on a segment
// still waiting in the bottleneck queue when the RTT rises, or its fast
// retransmission counts later ACKs while the segment's own ACK was lost.
// KCP's ACK echoes the timestamp of the copy it acknowledges, so an ACK
// echoing an earlier copy's timestamp than the last one sent proves the
// copy declared lost arrived (the Eifel detection of RFC 3522, with KCP's
// timestamp in place of TCP's). The lanes then tell the controller
// (AckEvent.Spurious) that a loss it was told of was none, and count it
// (Spurious), so that LossOut does not.
//
// Segments of a lapsed message sent as skip markers outside KCP
// (deadline.go) are not counted: they are rare and small, and KCP's own
// retransmission of them is.

/* Implementation constants */

// spuriousRTOHold is how long a retransmission timeout floor raised by a
// spurious retransmission holds before KCP's own floor is back.
const spuriousRTOHold = 10 * time.Second

// maxSpuriousRTO caps the floor a spurious retransmission raises, in
// KCP milliseconds; spuriousMinRTTs caps it at that many of the
// controller's minimum RTT.
const (
	maxSpuriousRTO  = 1000
	spuriousMinRTTs = 8
)

// spuriousRTTFrac is the fraction, in eighths of the minimum RTT, under
// which an acknowledgement through una arriving after a segment's
// retransmission proves an earlier copy arrived. Less than one round
// trip, for the error of the minimum RTT filter and of timestamps.
const spuriousRTTFrac = 6

// SetController makes the lanes report their data segments to ctrl (nil:
// no accounting, the default). overhead is the bytes a packet costs on
// the wire beyond its segments as kcp-go builds them (transport header,
// frame header, AEAD tag, less what the wire's compact records save on
// the segment headers): it is added to the first data segment of each
// packet, so that the controller's windows are in wire bytes.
func (ls *Lanes) SetController(ctrl cc.Controller, overhead int) {
	ls.cc, ls.ccOverhead = ctrl, overhead
}

// BytesInFlight is the bytes of data segments sent and neither
// acknowledged nor declared lost, wire overhead included; 0 without a
// controller.
func (ls *Lanes) BytesInFlight() int { return ls.inflightBytes }

// Lost returns the data segments declared lost so far (retransmitted by
// KCP) less those shown spurious, and the data segments sent, for the
// outbound loss rate.
func (ls *Lanes) Lost() (lost, sent uint64) { return ls.lostSegs - ls.spuriousSegs, ls.sentSegs }

// Spurious returns the retransmissions shown spurious so far: an ACK
// acknowledged the copy they declared lost.
func (ls *Lanes) Spurious() uint64 { return ls.spuriousSegs }

// sentSlot is one segment's last transmission: its cc.PacketState packed
// into 64 bytes (a PacketState is 120), since every segment in flight on
// every session has one. Times are nanoseconds from the lanes' epoch.
type sentSlot struct {
	sent, deliveredAt, firstSent int64 // packTime of the PacketState's times
	delivered, lost              int64
	bytes, inflight              int32
	ts                           uint32 // KCP timestamp of the last copy
	seq                          uint32 // the lanes' send order of the last copy (Lanes.sendSeq)
	appLimited                   bool
	live                         bool // in flight: neither acknowledged nor declared lost
	resent                       bool // a retransmission's: its send time is ambiguous for RTT
	undoable                     bool // the last copy declared the one before it lost
	byTimeout                    bool // the last copy was KCP's retransmission timeout's
	probed                       bool // the last copy was a tail-loss probe (rtohold.go)
}

// zeroTime packs the zero time.Time.
const zeroTime = math.MinInt64

// packTime is t as nanoseconds from the epoch. The epoch is the first
// time packed; time.Time's Sub and Add keep the monotonic reading, so a
// round trip through pack and unpack compares as the original did.
func (ls *Lanes) packTime(t time.Time) int64 {
	if t.IsZero() {
		return zeroTime
	}
	if ls.ccEpoch.IsZero() {
		ls.ccEpoch = t
	}
	return int64(t.Sub(ls.ccEpoch))
}

func (ls *Lanes) unpackTime(d int64) time.Time {
	if d == zeroTime {
		return time.Time{}
	}
	return ls.ccEpoch.Add(time.Duration(d))
}

// pack stores st in s (live and resent untouched).
func (ls *Lanes) pack(s *sentSlot, st cc.PacketState) {
	s.sent, s.deliveredAt, s.firstSent = ls.packTime(st.SentTime), ls.packTime(st.DeliveredTime), ls.packTime(st.FirstSentTime)
	s.delivered, s.lost = st.Delivered, st.Lost
	s.bytes, s.inflight = int32(st.Bytes), int32(min(st.Inflight, math.MaxInt32))
	s.appLimited = st.AppLimited
}

// state is the PacketState s holds.
func (ls *Lanes) state(s *sentSlot) cc.PacketState {
	return cc.PacketState{
		SentTime: ls.unpackTime(s.sent), DeliveredTime: ls.unpackTime(s.deliveredAt), FirstSentTime: ls.unpackTime(s.firstSent),
		Delivered: s.delivered, Lost: s.lost, Bytes: int(s.bytes), Inflight: int(s.inflight), AppLimited: s.appLimited,
	}
}

// sentRing holds the sentSlots of a lane's segments from base on, by sn.
// It grows by doubling (bounded by the send window: KCP holds at most
// SendWindow segments, and only those are ever added) and goes back to
// nothing when the lane is quiet (trim.go).
type sentRing struct {
	base  uint32 // sn of slots[head]
	head  int
	n     int // sns base..base+n-1 have slots
	slots []sentSlot
}

// at returns sn's slot, nil if it has none.
func (r *sentRing) at(sn uint32) *sentSlot {
	off := int(int32(sn - r.base))
	if r.n == 0 || off < 0 || off >= r.n {
		return nil
	}
	return &r.slots[(r.head+off)&(len(r.slots)-1)]
}

// slot returns sn's slot, adding slots up to it; nil for an sn below base.
func (r *sentRing) slot(sn uint32) *sentSlot {
	if r.n == 0 {
		r.base, r.head = sn, 0
	}
	off := int(int32(sn - r.base))
	if off < 0 {
		return nil
	}
	if off >= len(r.slots) {
		r.grow(off + 1)
	}
	for r.n <= off {
		r.slots[(r.head+r.n)&(len(r.slots)-1)] = sentSlot{}
		r.n++
	}
	return &r.slots[(r.head+off)&(len(r.slots)-1)]
}

func (r *sentRing) grow(need int) {
	size := max(sentRingMin, len(r.slots))
	for size < need {
		size *= 2
	}
	s := make([]sentSlot, size)
	for i := range r.n {
		s[i] = r.slots[(r.head+i)&(len(r.slots)-1)]
	}
	r.slots, r.head = s, 0
}

// pop removes the slot at base and returns it.
func (r *sentRing) pop() sentSlot {
	i := r.head
	s := r.slots[i]
	r.slots[i] = sentSlot{}
	r.head = (i + 1) & (len(r.slots) - 1)
	r.base++
	r.n--
	return s
}

// trackSent reports one data segment of seg bytes, sn sn, KCP timestamp
// ts, sent at the current call's time. fresh says KCP sends it for the
// first time; probe that it is a tail-loss probe; timeout that KCP's
// retransmission timeout resends it.
func (ls *Lanes) trackSent(l *lane, sn, ts uint32, bytes int, fresh, probe, timeout bool) {
	if ls.cc == nil {
		return
	}
	if ls.packetFirst {
		bytes += ls.ccOverhead
		ls.packetFirst = false
	}
	s := l.sent.slot(sn)
	if s == nil {
		return // below una: acknowledged while KCP resent it
	}
	undoable := false
	if s.live {
		ls.inflightBytes -= int(s.bytes)
		s.live = false
		if !fresh && !probe {
			ls.lostSegs++
			ls.lostBuf = append(ls.lostBuf[:0], ls.state(s))
			ls.cc.OnLoss(ls.now, ls.lostBuf, ls.inflightBytes)
			undoable = true
		}
	}
	ls.pack(s, ls.cc.OnPacketSent(ls.now, bytes, ls.inflightBytes))
	// A probe's copy replaces the state without a loss: an ACK of an
	// earlier copy then undoes nothing.
	s.live, s.resent, s.undoable, s.byTimeout, s.probed, s.ts = true, !fresh, undoable, timeout, probe, ts
	if !probe {
		// A probe's copy keeps the send order of KCP's copy, which the
		// timeout hold judges (rtohold.go): KCP's timeout is for it.
		ls.sendSeq++
		s.seq = ls.sendSeq
	}
	if timeout {
		ls.timeoutSegs.Add(1)
	}
	ls.inflightBytes += bytes
	ls.sentSegs++
}

// ackedSN notes that an ACK segment acknowledged sn, echoing the KCP
// timestamp ts of the copy that arrived.
func (ls *Lanes) ackedSN(l *lane, sn, ts uint32) {
	if ls.cc == nil {
		return
	}
	if s := l.sent.at(sn); s != nil && s.live {
		if s.undoable && int32(ts-s.ts) < 0 {
			// An earlier copy than the last arrived: the one the last
			// retransmission declared lost, or one before it. (A copy
			// resent within KCP's millisecond cannot be told apart.)
			rtt := int32(0)
			if s.byTimeout {
				// Only a timeout adapts the timeout: a fast
				// retransmission on a lost ACK says nothing of it, and
				// the echo came late (the ACK repeated).
				rtt = int32(ls.kcpMs() - ts)
			}
			ls.spurious(l, rtt)
		}
		// An ACK echoing an earlier copy's timestamp than the last's:
		// that copy's send time and order are not kept (rtohold.go).
		ls.delivered(s, !(s.resent && int32(ts-s.ts) < 0))
		s.live = false
		ls.inflightBytes -= int(s.bytes)
		ls.ackedBuf = append(ls.ackedBuf, ls.state(s))
		ls.ackedResent = ls.ackedResent || s.resent
	}
}

// ackRTT notes the round trip an ACK segment gives: KCP's ACK echoes the
// timestamp of the copy it acknowledges, so the sample is exact even for
// a retransmitted segment (no Karn ambiguity), to KCP's millisecond.
func (ls *Lanes) ackRTT(ts uint32) {
	if ls.cc == nil {
		return
	}
	d := int32(ls.kcpMs() - ts)
	if d < 0 || d > 60_000 {
		return // not a timestamp of ours
	}
	rtt := time.Duration(max(d, 1)) * time.Millisecond
	if ls.ackedRTT == 0 || rtt < ls.ackedRTT {
		ls.ackedRTT = rtt
	}
}

// ackedUna notes that una acknowledged every sn below it.
func (ls *Lanes) ackedUna(l *lane, una uint32) {
	if ls.cc == nil {
		return
	}
	r := &l.sent
	minRTT := time.Duration(-1) // not read yet
	for r.n > 0 && int32(r.base-una) < 0 {
		if s := r.pop(); s.live {
			if s.undoable {
				if minRTT < 0 {
					minRTT = ls.cc.Stats().MinRTT
				}
				// Acknowledged sooner after its retransmission than any
				// round trip takes: the copy declared lost arrived (KCP
				// acknowledges in-order segments through una alone, so
				// most spurious retransmissions show only here).
				// The time from the copy declared lost to una is no RTT:
				// una may have waited for an earlier hole (a lost ACK
				// packet made KCP resend a segment that had arrived), so
				// this path does not raise the timeout floor (0).
				if minRTT > 0 && ls.now.Sub(ls.unpackTime(s.sent)) < minRTT*spuriousRTTFrac/8 {
					ls.spurious(l, 0)
				}
			}
			// Through una, a resent segment may have arrived as any
			// of its copies.
			ls.delivered(&s, !s.resent)
			ls.inflightBytes -= int(s.bytes)
			ls.ackedBuf = append(ls.ackedBuf, ls.state(&s))
			ls.ackedResent = ls.ackedResent || s.resent
		}
	}
}

// reportAcks hands what the current Input acknowledged to the controller.
func (ls *Lanes) reportAcks(now time.Time) {
	if ls.cc == nil {
		return
	}
	if len(ls.ackedBuf) > 0 {
		// The newest acknowledged packet's send time gives the RTT, to
		// the nanosecond, unless a retransmitted segment was acknowledged
		// (the ACK may be for an earlier copy): then the ACK segments'
		// echoed timestamps give it, to KCP's millisecond, or nothing.
		ev := cc.AckEvent{Acked: ls.ackedBuf, Inflight: ls.inflightBytes, Spurious: ls.ackedSpurious}
		if ls.ackedResent {
			ev.RTT, ev.NoRTT = ls.ackedRTT, ls.ackedRTT == 0
		}
		ls.cc.OnAck(now, ev)
		ls.noteMinRTT()
		clear(ls.ackedBuf)
		ls.ackedBuf = ls.ackedBuf[:0]
	}
	ls.ackedRTT, ls.ackedResent, ls.ackedSpurious = 0, false, 0
}

// noteMinRTT keeps the least minimum RTT the controller reported
// (pathMinRTT). Read after every acknowledgement the controller was given:
// its minimum only changes there.
func (ls *Lanes) noteMinRTT() {
	if m := ls.cc.Stats().MinRTT; m > 0 && (ls.leastRTT == 0 || m < ls.leastRTT) {
		ls.leastRTT = m
	}
}

// pathMinRTT is the path's round trip without a queue, as the timeout
// hold and the Eifel response judge it: the least minimum RTT the
// controller ever reported, not its current one. A model-based
// controller's minimum is windowed (BBR's 10 s filter), and behind a
// standing queue it expires to the queue's delay: through the bench's
// 20 Mbit/s tbf (a path of 100-300 µs without its queue), BBR's ProbeRTT
// could not drain the queue (the gate's window floor of three pacer
// quanta is above ProbeRTT's four packets) and, 10 s into the session,
// its minimum jumped from 0.15 ms to 5-24 ms. Judged by that minimum the
// path became one for the Eifel response (8 minimum RTTs over KCP's 30
// ms floor) and the hold stopped; the window grew with the minimum, the
// queue to KCP's timeout, and KCP resent whole flights still queued
// (0.2-0.85 % of the packets sent in the no-loss bottleneck scenario).
// The least minimum does not rise on a path that grows longer (a route
// change): the hold then stays in charge where the Eifel response could
// have raised KCP's floor, which only costs a timeout held behind ACKs
// that keep coming.
func (ls *Lanes) pathMinRTT() time.Duration {
	ls.noteMinRTT()
	return ls.leastRTT
}

// spurious counts a retransmission shown spurious on lane l, whose copy
// declared lost took rttMs (KCP milliseconds, from its send to the
// acknowledgement that echoed its timestamp; 0: unknown) to be
// acknowledged, and with Config.SpuriousRTOFloor makes l's KCP less
// eager:
// the spurious ones are mostly timeouts on segments still queued at a
// bottleneck when the RTT rose (a rate drop, a bandwidth probe). As the
// Eifel response (RFC 4015) adapts the timeout to the RTT the late copy
// showed, the lane raises KCP's floor on its retransmission timeout to
// 5/4 of that RTT (at most maxSpuriousRTO, and spuriousMinRTTs of the
// controller's minimum RTT) for spuriousRTOHold. Fast
// retransmission and tail-loss probes, which repair most real losses,
// are not slowed.
func (ls *Lanes) spurious(l *lane, rttMs int32) {
	ls.spuriousSegs++
	ls.ackedSpurious++
	if !ls.cfg.SpuriousRTOFloor || rttMs <= 0 || rttMs > 60_000 || l.arq == nil {
		return
	}
	// At most spuriousMinRTTs minimum RTTs: a queue longer than that
	// is not what delayed the copy. On a LAN or loopback path the floor
	// then stays KCP's own, where a late copy means a stalled process
	// (a starved CPU), not a queue, and the raised floor only delayed
	// the repair of real losses (loopback bulk fell to 24 MB/s in one
	// run).
	// The path's minimum (pathMinRTT), as the timeout hold judges
	// which of the two is in charge.
	st := ls.cc.Stats()
	minRTT := ls.pathMinRTT()
	if minRTT <= 0 || st.SmoothedRTT <= minRTT+minRTT/4 {
		// No queue: the copy was late for another reason (an ACK
		// lost and repeated, a stalled peer), which a longer timeout
		// would only make slower to repair.
		return
	}
	most := uint32(min(spuriousMinRTTs*minRTT/time.Millisecond, maxSpuriousRTO))
	floor := min(uint32(rttMs)+uint32(rttMs)/4, most)
	if l.rtoFloor == 0 {
		def, ok := ls.sh.KCP.MinRTO(l.arq)
		if !ok {
			return
		}
		l.rtoDefault = def
	}
	l.rtoFloorUntil = ls.now.Add(spuriousRTOHold)
	if floor > max(l.rtoFloor, l.rtoDefault) {
		l.rtoFloor = floor
		ls.sh.KCP.SetMinRTO(l.arq, floor)
	}
}

// expireRTOFloor gives l's KCP its own retransmission timeout floor back
// once a raised one has held for spuriousRTOHold.
func (ls *Lanes) expireRTOFloor(l *lane, now time.Time) {
	if l.rtoFloor != 0 && !now.Before(l.rtoFloorUntil) {
		l.rtoFloor = 0
		if l.arq != nil {
			ls.sh.KCP.SetMinRTO(l.arq, l.rtoDefault)
		}
	}
}
