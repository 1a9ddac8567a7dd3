package uxp

import (
	"errors"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// A lane's ARQ. Each lane runs one KCP state machine, arq, used the
// standard way: it sends this side's messages and receives the peer's, so
// its segments carry data and ACKs mixed and every segment's una and wnd
// describe this side's receive state. conv = session ID.
//
// Lane message header: the first byte of each KCP message of a lane is its
// kind:
//
//	0 plain:    payload
//	1 skip:     nothing; the message was abandoned (deadline.go)
//	2 deadline: uvarint(deadline) | uvarint(payload length) | payload
//
// A deadline message may lose some of its segments to skip markers
// (deadline.go): its first segment becomes a lone kind-1 byte, the others
// become empty. The receiver then reassembles either a skip message, or a
// deadline message shorter than its declared length; it delivers neither
// and counts both as skipped.

// laneKCPOutput is the output callback of a lane's KCP.
func (c *Conn) laneKCPOutput(l *lane) func([]byte, int) {
	return func(buf []byte, size int) {
		segs := buf[:size]
		// Count retransmissions: KCP sends new data in increasing sn
		// order, so a PUSH at or below the highest sn sent is a resend.
		// Segments of lapsed messages become skip markers on the way.
		out := segs[:0]
		data := false
		for p := segs; ; {
			seg, rest, ok := wire.NextSegment(p)
			if !ok {
				break
			}
			p = rest
			// Every segment KCP sends carries its current receive state;
			// skip markers, sent outside KCP, repeat the latest.
			l.outWnd = seg.Wnd()
			l.outUna = seg.Una()
			if seg.Cmd() == wire.CmdPush {
				data = true
				sn := seg.Sn()
				fresh := !l.sentData || int32(sn-l.maxSentSN) > 0
				if fresh {
					l.maxSentSN, l.sentData = sn, true
				} else {
					l.ctr.retrans.Add(1)
					c.traffic.retrans.Add(1)
					c.shard.traffic.retrans.Add(1)
				}
				if m := c.laneLapsed(l, sn); m != nil {
					seg = skipSegment(seg, sn == m.firstSN)
				}
				c.noteDataSent(l, seg, sn, fresh, c.shard.now)
			}
			// out never overtakes p: skip markers only shrink segments.
			out = append(out, seg...)
		}
		segs = out
		if len(segs) > 0 {
			c.laneOutput(l, segs, data)
		}
		if data {
			c.armProbe(l, c.shard.now)
		}
	}
}

// laneOutput frames a lane's segments: frame type 1 for lane 0, frame type
// 10 with the lane byte for the others.
func (c *Conn) laneOutput(l *lane, segs []byte, viaFEC bool) {
	if h := c.ep.set.hooks.dropLane; h != nil && h(l.id, segs) {
		return
	}
	// Segments without data (ACKs, window probes and answers) bypass FEC:
	// they are small, cumulative and resent by KCP's next flush anyway, so
	// parity over them would cost bytes and enlarge groups for nothing.
	if l.id == 0 {
		if !c.emitKCP(wire.FrameKCP, nil, segs, viaFEC) {
			c.emitFrame(wire.FrameKCP, nil, segs, viaFEC)
		}
		return
	}
	id := [laneIDSize]byte{byte(l.id)}
	if !c.emitKCP(wire.FrameLane, id[:], segs, viaFEC) {
		c.emitFrame(wire.FrameLane, id[:], segs, viaFEC)
	}
}

// emitFrame sends a frame whose body is hdr || body: through FEC as an
// inner frame when FEC is on and viaFEC is set, else as its own transport
// packet. A receiver accepts every inner frame type directly too.
func (c *Conn) emitFrame(kind byte, hdr, body []byte, viaFEC bool) {
	if c.fec.enc == nil || !viaFEC {
		c.sendFrameTo(kind, hdr, body, c.remoteAP)
		return
	}
	b := append(c.frameScratch[:0], kind)
	b = append(b, hdr...)
	b = append(b, body...)
	c.frameScratch = b[:0]
	c.fecOutput(b)
}

// laneFrameInput handles the body of a frame of type 10.
func (c *Conn) laneFrameInput(body []byte, typ kcp.PacketType) {
	if len(body) < laneIDSize || int(body[0]) >= len(c.lanes) || body[0] == 0 {
		// Lane 0 has its own frame type; an unknown lane is a
		// configuration mismatch or garbage.
		c.drop(dropMalformed)
		return
	}
	c.laneInput(c.lanes[body[0]], body[laneIDSize:], typ)
}

// laneInput checks a lane's segments, takes the una each carries (the
// latency tracker and laneConfirm read it before KCP does), hands them to
// the lane's KCP in one Input, then delivers what became complete.
// A malformed segment is counted and ends the frame; the segments before
// it are still taken. Segments KCP would spend unbounded work or memory on
// are filtered first (lane_bounds.go): an ACK this side already took is
// passed with its sn moved out of range, and a data segment beyond the
// receive window or the session's receive budget is left out.
func (c *Conn) laneInput(l *lane, body []byte, typ kcp.PacketType) {
	if len(body) == 0 {
		c.drop(dropMalformed)
		return
	}
	c.expireLanes(c.shard.now)
	k := c.laneKCP(l)
	in := segFilter{c: c, l: l, k: k, body: body}
	bad := false
	for p := body; len(p) > 0; {
		seg, rest, ok := wire.NextSegment(p)
		if !ok || seg.Conv() != c.id || int32(seg.Una()-l.sndSN) > 0 {
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
		switch seg.Cmd() {
		case wire.CmdPush:
			act = in.push(seg)
			if act == segKeep {
				l.ackPending = true // it needs an ACK
			}
		case wire.CmdWask:
			l.ackPending = true // it needs a window answer
		case wire.CmdAck:
			c.probeACK(l, seg.Sn(), seg.Ts(), c.shard.now)
		case wire.CmdWins:
		default:
			act = segBad
		}
		if act == segBad {
			bad = true
			break
		}
		c.noteUna(&l.lat, una, c.shard.now)
		c.laneConfirm(l, una)
		l.notePeerWnd(seg)
		if seg.Cmd() == wire.CmdAck {
			act = in.ack(seg)
		}
		in.take(seg, act)
		p = rest
	}
	if segs := in.segments(); len(segs) > 0 && k.Input(segs, typ, false) < 0 {
		bad = true // cannot happen: the segments were checked above
	}
	if bad {
		c.drop(dropMalformed)
	}
	c.checkWndProbe(l, c.shard.now)
	c.laneDeliver(l, false)
}

// laneConfirm drops acknowledged messages from the send side: una says
// every segment below it arrived.
func (c *Conn) laneConfirm(l *lane, una uint32) {
	if int32(una-l.sndUna) <= 0 {
		return
	}
	l.forgetAcked(una)
	l.sndUna = una
	c.probeAcked(l, una, c.shard.now)
	i := 0
	for ; i < len(l.inflight) && int32(l.inflight[i].lastSN-una) < 0; i++ {
		if l.inflight[i].lapsed {
			l.lapsed--
		} else {
			l.queued -= l.inflight[i].size
		}
	}
	// Compact in place rather than reslice, so that the array is reused:
	// the list is bounded by the send window.
	n := copy(l.inflight, l.inflight[i:])
	clear(l.inflight[n:])
	l.inflight = l.inflight[:n]
}

// deliverLanes runs laneDeliver on every lane.
func (c *Conn) deliverLanes(force bool) {
	for _, l := range c.lanes {
		c.laneDeliver(l, force)
	}
}

// laneDeliver hands the lane's complete messages to the application.
// Unless force is set, it stops while a flowHandler reports its buffer
// full; the messages stay in KCP (bounded by the receive window, which KCP
// then advertises as closed) until the handler calls resumeRecv.
func (c *Conn) laneDeliver(l *lane, force bool) {
	if l.arq == nil {
		return // nothing received yet
	}
	buf := c.shard.recvBuf
	for c.state != stateClosed {
		if !force && c.state == stateEstablished {
			if fh, ok := c.handlerFor().(flowHandler); ok && fh.recvFull() {
				return
			}
		}
		n := l.arq.PeekSize()
		if n < 0 {
			return
		}
		if n > len(buf) {
			c.terminate(&ProtocolError{Reason: "peer sent a message larger than MaxMessageSize"}, CloseProtocolError, "message larger than MaxMessageSize", true)
			return
		}
		n = l.arq.Recv(buf)
		if n < 0 {
			return // cannot happen after PeekSize
		}
		l.rcvMsgs++
		m, err := wire.ParseLaneMessage(buf[:n])
		switch {
		case errors.Is(err, wire.ErrLaneEmpty):
			// An empty message has no kind byte: malformed, and it can only
			// come from a peer that crafted the KCP segment. Count it and go
			// on to the messages behind it.
			c.drop(dropMalformed)
			continue
		case errors.Is(err, wire.ErrLaneHeader):
			c.terminate(&ProtocolError{Reason: "bad lane message header"}, CloseProtocolError, "bad lane message header", true)
			return
		case err != nil:
			c.terminate(&ProtocolError{Reason: "bad lane message kind"}, CloseProtocolError, "bad lane message kind", true)
			return
		case m.Kind == wire.LaneMsgSkip, m.Short:
			// Abandoned, or some segments were replaced by skip markers.
			l.ctr.skipped.Add(1)
			continue
		case m.Deadline != 0 && c.clock(c.shard.now)/1000 > m.Deadline:
			// Complete, but too late: it waited behind an earlier
			// message (deadline.go).
			l.ctr.skipped.Add(1)
			continue
		}
		payload := m.Payload
		l.ctr.msgsIn.Add(1)
		c.traffic.msgsIn.Add(1)
		c.shard.traffic.msgsIn.Add(1)
		// After a local Close the application no longer wants data; keep
		// draining KCP so its window stays open while we linger.
		if c.state == stateEstablished {
			c.callLaneData(l.id, payload)
		}
	}
}
