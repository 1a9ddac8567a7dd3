package arq

import (
	"errors"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// A lane's ARQ. Each lane runs one KCP state machine, used the standard
// way: it sends this side's messages and receives the peer's, so its
// segments carry data and ACKs mixed and every segment's una and wnd
// describe this side's receive state. conv = session ID.
//
// Lane message header (internal/wire lane.go): the first byte of each KCP
// message of a lane is its kind (plain, skip, deadline). A deadline
// message may lose some of its segments to skip markers (deadline.go):
// its first segment becomes a lone kind-1 byte, the others become empty.
// The receiver then reassembles either a skip message, or a deadline
// message shorter than its declared length; it delivers neither and
// counts both as skipped.

// output is the output callback of a lane's KCP.
func (ls *Lanes) output(l *lane, segs []byte) {
	// Count retransmissions: KCP sends new data in increasing sn order,
	// so a PUSH at or below the highest sn sent is a resend. Segments of
	// lapsed messages become skip markers on the way.
	out := segs[:0]
	s := Sent{}
	ls.packetFirst = true
	for p := segs; ; {
		seg, rest, ok := wire.NextSegment(p)
		if !ok {
			break
		}
		at := len(segs) - len(p) // seg's offset in segs
		p = rest
		// Every segment KCP sends carries its current receive state;
		// forged segments repeat the latest.
		l.outWnd = seg.Wnd()
		l.outUna = seg.Una()
		if seg.Cmd() == wire.CmdAck {
			l.reack.noteAck(seg)
		}
		if seg.Cmd() == wire.CmdPush {
			s.Data = true
			sn := seg.Sn()
			fresh := !l.sentData || int32(sn-l.maxSentSN) > 0
			if fresh {
				l.maxSentSN, l.sentData = sn, true
			} else {
				l.ctr.Retrans.Add(1)
				s.Retrans++
			}
			if m := l.lapsedAt(sn); m != nil {
				seg = skipSegment(seg, sn == m.firstSN)
			}
			if !fresh {
				s.RetransBytes += len(seg)
			}
			ls.noteDataSent(l, seg, sn, fresh)
			timeout := false
			if !fresh && ls.cc != nil {
				timeout, _ = ls.sh.KCP.ResentOnTimeout(l.arq, sn)
			}
			ls.trackSent(l, sn, seg.Ts(), len(seg), fresh, false, timeout)
		}
		// out never overtakes p: skip markers only shrink segments
		// (in place). Until one has, seg already sits where out ends:
		// take it without a copy.
		if at == len(out) {
			out = segs[:at+len(seg)]
		} else {
			out = append(out, seg...)
		}
	}
	if l.reack.has {
		out = ls.withReAcks(l, out, l.outUna, l.outWnd)
	}
	if len(out) > 0 {
		s.Bytes = len(out)
		ls.emit(l, out, s)
	}
	if s.Data {
		ls.armProbe(l, ls.now)
	}
}

// emit hands segments to Output and adds them to the current flush's
// totals.
func (ls *Lanes) emit(l *lane, segs []byte, s Sent) {
	ls.sent.Data = ls.sent.Data || s.Data
	ls.sent.Bytes += s.Bytes
	ls.sent.Retrans += s.Retrans
	ls.sent.RetransBytes += s.RetransBytes
	ls.out.Output(l.id, segs, s)
}

// emitCopy is emit for segments the caller sends again later (skip
// markers, tail copies): Output may write over what it gets, so it gets
// a copy in the shard's scratch.
func (ls *Lanes) emitCopy(l *lane, segs []byte, s Sent) {
	b := append(ls.sh.resend[:0], segs...)
	ls.sh.resend = b[:0]
	ls.emit(l, b, s)
}

// InputRecords is Input for a frame body as the wire carries it: compact
// records (internal/wire record.go), buf[off:], which it expands back to
// kcp-go's segments before anything else looks at them, every record
// against the lane's state before this frame: the next sn its KCP
// expects (rcvRef), the oldest sn of its own not yet acknowledged
// (sndUna, the highest una the peer sent), the last wnd the peer sent
// (peerWnd; with sndUna, what a frame whose first record has no U
// means), and KCP's clock now (an ACK's 16-bit ts). buf[:off] is free
// room: a frame of one record whose segment
// header fits there is expanded in place (its data does not move);
// anything else into the shard's scratch buffer (wire.ExpandInPlace says
// why). The bounds of Input then apply to the expanded values. A malformed record is counted and
// ends the frame; the records before it are still taken.
func (ls *Lanes) InputRecords(now time.Time, lane int, buf []byte, off int, typ kcp.PacketType) {
	l := ls.lanes[lane]
	ls.begin(now)
	ref := wire.Refs{Conv: ls.cfg.Conv, RcvNxt: ls.rcvRef(l), SndUna: l.sndUna, Wnd: l.wnd.peerWnd, Now: ls.kcpMs()}
	segs, ok, fit := wire.ExpandInPlace(buf, off, ref)
	if !fit {
		segs, ok = wire.Expand(ls.sh.expand[:0], buf[off:], ref)
		ls.sh.expand = segs[:0]
	}
	if len(segs) == 0 {
		ls.out.Event(EvMalformed)
		return
	}
	ls.Input(now, lane, segs, typ)
	if !ok {
		ls.out.Event(EvMalformed)
	}
}

// rcvRef is the reference a lane expands the sn of a PUSH against: the
// sn its KCP expects next. Without internal/kcpx's fast path it is the
// sn after the highest data segment taken, at most the receive window
// and its slack ahead of that: expansion then stays exact while the
// peer's send window plus this receive window and its slack stay below
// 2^15 (the defaults, 256 each, are far from it; two windows of 2^14
// are not).
func (ls *Lanes) rcvRef(l *lane) uint32 {
	if l.arq == nil {
		return 0 // KCP starts at 0
	}
	if nxt, _, _, ok := ls.sh.KCP.RecvState(l.arq); ok {
		return nxt
	}
	return l.rcvNext
}

// Input takes the body of a lane frame: the lane's segments. typ is the
// KCP packet type (regular, or recovered by FEC). It checks the segments,
// takes the una each carries (the latency tracker and confirm read it
// before KCP does) and hands them to the lane's KCP in one Input; the
// caller then delivers what became complete (DeliverLane). A malformed segment is counted
// and ends the frame; the segments before it are still taken. Segments
// KCP would spend unbounded work or memory on are filtered first
// (bounds.go).
func (ls *Lanes) Input(now time.Time, lane int, body []byte, typ kcp.PacketType) {
	l := ls.lanes[lane]
	if len(body) == 0 {
		ls.out.Event(EvMalformed)
		return
	}
	ls.Expire(now)
	ls.begin(now)
	k := ls.kcp(l)
	in := segFilter{ls: ls, l: l, k: k, body: body}
	bad := false
	for p := body; len(p) > 0; {
		seg, rest, ok := wire.NextSegment(p)
		if !ok || seg.Conv() != ls.cfg.Conv || int32(seg.Una()-l.sndSN) > 0 {
			// Truncated, another conversation, or acknowledging segments
			// this side never sent (KCP would discard its whole send
			// buffer for it).
			bad = true
			break
		}
		una := seg.Una()
		if seg.Cmd() != wire.CmdPush && (seg.Len() != 0 || seg.Frg() != 0) {
			// ACKs and window probes carry no payload and no fragment
			// number (KCP would skip a payload unread).
			bad = true
			break
		}
		act := segKeep
		rtt := time.Duration(0)
		switch seg.Cmd() {
		case wire.CmdPush:
			act = in.push(seg)
			if act == segKeep {
				l.ackPending = true // it needs an ACK
				sn := seg.Sn()
				ooo := l.rcvSeen && sn != l.rcvNext
				if ooo && in.known && int32(sn-in.rcvNxt) < 0 {
					// A repeat of a segment KCP already has in order (a
					// spurious retransmission, or one whose ACK was
					// lost): it neither opens nor fills a gap, so its
					// ACK goes with the next one, within the ACK delay,
					// not at once.
					ooo = false
				}
				if !l.rcvSeen || int32(sn-l.rcvNext) >= 0 {
					l.rcvNext, l.rcvSeen = sn+1, true
				}
				ls.acks.OnData(now, lane, len(seg), ls.fullSize(len(seg)), ooo)
			}
		case wire.CmdWask:
			l.ackPending = true // it needs a window answer
		case wire.CmdAck:
			rtt = ls.probeACK(l, seg.Sn(), seg.Ts(), now)
			ls.ackedSN(l, seg.Sn(), seg.Ts())
			ls.ackRTT(seg.Ts())
		case wire.CmdWins:
		default:
			act = segBad
		}
		if act == segBad {
			bad = true
			break
		}
		ls.noteUna(l, una, now)
		ls.ackedUna(l, una)
		ls.confirm(l, una, rtt)
		if typ == kcp.IKCP_PACKET_REGULAR {
			// As KCP's rmt_wnd: a segment FEC recovered may be older
			// than those that came after it. It is also the wnd a
			// frame whose first record leaves una and wnd out means
			// (InputRecords), so it must stay what KCP holds.
			l.wnd.peerWnd = seg.Wnd()
		}
		if seg.Cmd() == wire.CmdAck {
			act = in.ack(seg)
		}
		in.take(seg, act)
		p = rest
	}
	segs := in.segments()
	if len(segs) > 0 {
		// kcp-go's Input flushes everything (retransmission timeouts
		// included) when the window slid or a fast retransmission is due.
		ls.holdTimeouts(l)
	}
	if len(segs) > 0 && k.Input(segs, typ, false) < 0 {
		bad = true // cannot happen: the segments were checked above
	}
	if bad {
		ls.out.Event(EvMalformed)
	}
	ls.reportAcks(now)
	ls.expireRTOFloor(l, now)
	ls.checkWndProbe(l, now)
}

// confirm drops acknowledged messages from the send side: una says every
// segment below it arrived. rtt is a data RTT sample the segment carrying
// una gave, reported with the progress (or alone).
func (ls *Lanes) confirm(l *lane, una uint32, rtt time.Duration) {
	if int32(una-l.sndUna) <= 0 {
		if rtt > 0 {
			ls.out.Acked(l.id, Ack{RTT: rtt})
		}
		return
	}
	a := Ack{Segments: int(una - l.sndUna)}
	l.forgetAcked(una)
	l.sndUna = una
	if r := ls.probeAcked(l, una, ls.now); r > 0 {
		rtt = r
	}
	a.RTT = rtt
	i := 0
	for ; i < len(l.inflight) && int32(l.inflight[i].lastSN-una) < 0; i++ {
		if l.inflight[i].lapsed {
			l.lapsed--
		} else {
			l.queued -= l.inflight[i].size
			a.Bytes += l.inflight[i].size
		}
	}
	// Compact in place rather than reslice, so that the array is reused:
	// the list is bounded by the send window.
	n := copy(l.inflight, l.inflight[i:])
	clear(l.inflight[n:])
	l.inflight = l.inflight[:n]
	ls.out.Acked(l.id, a)
}

// DeliverLane hands lane's complete messages to Output.Deliver, until it
// asks to stop; the rest stay in KCP (bounded by the receive window, which
// KCP then advertises as closed). The caller checks before that the
// application takes messages at all. An error is fatal to the session:
// the peer broke the protocol.
func (ls *Lanes) DeliverLane(now time.Time, lane int) error {
	ls.begin(now)
	l := ls.lanes[lane]
	if l.arq == nil {
		return nil // nothing received yet
	}
	buf := ls.sh.RecvBuf
	var clock uint64 // this side's clock for deadline messages; 0: not read yet
	for {
		n := l.arq.PeekSize()
		if n < 0 {
			return nil
		}
		if n > len(buf) {
			return ErrTooLarge
		}
		n = l.arq.Recv(buf)
		if n < 0 {
			return nil // cannot happen after PeekSize
		}
		l.rcvMsgs++
		m, err := wire.ParseLaneMessage(buf[:n])
		switch {
		case errors.Is(err, wire.ErrLaneEmpty):
			// An empty message has no kind byte: malformed, and it can
			// only come from a peer that crafted the KCP segment. Count
			// it and go on to the messages behind it.
			ls.out.Event(EvMalformed)
			continue
		case err != nil:
			return err // wire.ErrLaneHeader or wire.ErrLaneKind
		case m.Kind == wire.LaneMsgSkip, m.Short:
			// Abandoned, or some segments were replaced by skip markers.
			l.ctr.Skipped.Add(1)
			continue
		case m.Deadline != 0:
			if clock == 0 {
				clock = max(ls.out.LocalClock(ls.now), 1)
			}
			if clock > m.Deadline {
				// Complete, but too late: it waited behind an earlier
				// message (deadline.go).
				l.ctr.Skipped.Add(1)
				continue
			}
		}
		l.ctr.MsgsIn.Add(1)
		if !ls.out.Deliver(l.id, m.Payload) {
			return nil
		}
	}
}
