package uxp

import (
	"encoding/binary"

	kcp "github.com/xtaci/kcp-go/v5"
)

// A lane's ARQ. Each lane runs two KCP state machines: snd carries this
// side's messages (it emits PUSH and window probes, and takes ACKs and
// window answers), rcv takes the peer's messages (it takes PUSH and window
// probes, and emits ACKs). Splitting the directions lets one side reset its
// sending conversation after a deadline (deadline.go) without disturbing
// what it receives. Incoming segments are routed one by one by command.
//
// Conversation number of every segment: session ID XOR epoch, where the
// epoch is the sending side's reset count for that lane (0 at first, so
// lane 0 starts with conv = session ID as in the core protocol).
//
// Lane message header: each KCP message of a lane is
//
//	uvarint(x) | application bytes
//
// where x is the message's absolute ordinal (its number on the lane,
// counting from 0) for the first message of an epoch, and otherwise the
// number of ordinals skipped since the previous message of the epoch (0
// when none was abandoned in between). The receiver numbers messages with
// it, delivers each ordinal at most once, and counts the gaps as skipped.

// laneSendOutput is the output callback of a lane's sending KCP.
func (c *Conn) laneSendOutput(l *lane) func([]byte, int) {
	return func(buf []byte, size int) {
		segs := buf[:size]
		// Count retransmissions: KCP sends new data in increasing sn
		// order, so a PUSH at or below the highest sn sent is a resend.
		for p := segs; len(p) >= kcpOverhead; {
			n := int(binary.LittleEndian.Uint32(p[20:24]))
			if p[4] == kcp.IKCP_CMD_PUSH {
				sn := binary.LittleEndian.Uint32(p[12:16])
				if c.laneLapsedSN(l, sn) {
					// Too late to be of use: keep it off the wire
					// (deadline.go).
					l.needReset = true
					end := min(kcpOverhead+n, len(p))
					rest := copy(p, p[end:])
					segs = segs[:len(segs)-end]
					p = p[:rest]
					continue
				}
				dbg("send sn %d epoch %d", sn, l.sndEpoch)
				if l.sentData && int32(sn-l.maxSentSN) <= 0 {
					l.ctr.retrans.Add(1)
					c.traffic.retrans.Add(1)
					c.shard.traffic.retrans.Add(1)
				} else {
					l.maxSentSN, l.sentData = sn, true
				}
			}
			if n > len(p)-kcpOverhead {
				break
			}
			p = p[kcpOverhead+n:]
		}
		if len(segs) > 0 {
			c.laneOutput(l, segs)
		}
	}
}

// laneRecvOutput is the output callback of a lane's receiving KCP (ACKs
// and window answers).
func (c *Conn) laneRecvOutput(l *lane) func([]byte, int) {
	return func(buf []byte, size int) { c.laneOutput(l, buf[:size]) }
}

// laneOutput frames a lane's segments: frame type 1 for lane 0, frame type
// 10 with the lane byte for the others.
func (c *Conn) laneOutput(l *lane, segs []byte) {
	if h := c.ep.set.testDropLane; h != nil && h(l.id) {
		return
	}
	if l.id == 0 {
		c.emitFrame(frameKCP, nil, segs)
		return
	}
	id := [laneIDSize]byte{byte(l.id)}
	c.emitFrame(frameLane, id[:], segs)
}

// emitFrame sends a frame whose body is hdr || body: through FEC as an
// inner frame when FEC is on, else as its own transport packet.
func (c *Conn) emitFrame(kind byte, hdr, body []byte) {
	if c.fec.enc == nil {
		c.sendFrameParts(kind, hdr, body)
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

// laneInput routes a lane's segments to its two KCPs, then delivers what
// became complete.
func (c *Conn) laneInput(l *lane, body []byte, typ kcp.PacketType) {
	if len(body) == 0 {
		c.drop(dropMalformed)
		return
	}
	c.expireLanes(c.shard.now)
	for p := body; len(p) > 0; {
		if len(p) < kcpOverhead {
			c.drop(dropMalformed)
			return
		}
		n := binary.LittleEndian.Uint32(p[20:24])
		if uint64(n) > uint64(len(p)-kcpOverhead) {
			c.drop(dropMalformed)
			return
		}
		seg := p[:kcpOverhead+int(n)]
		p = p[kcpOverhead+int(n):]
		epoch := binary.LittleEndian.Uint32(seg[0:4]) ^ c.id
		var k *kcp.KCP
		switch seg[4] {
		case kcp.IKCP_CMD_PUSH, kcp.IKCP_CMD_WASK:
			if epoch != l.rcvEpoch {
				// A newer epoch means the peer abandoned messages and
				// restarted its conversation: follow it. Older epochs are
				// leftovers still in flight; they carry nothing the new
				// conversation does not.
				if seg[4] != kcp.IKCP_CMD_PUSH || int32(epoch-l.rcvEpoch) < 0 {
					continue
				}
				c.laneNewRecvEpoch(l, epoch)
			}
			k = l.rcv
			l.ackPending = true
			c.ackPending = true
		case kcp.IKCP_CMD_ACK, kcp.IKCP_CMD_WINS:
			if epoch != l.sndEpoch {
				// Answers to a conversation we have reset.
				if epoch == l.prevEpoch && seg[4] == kcp.IKCP_CMD_ACK {
					c.lanePrevConfirm(l, binary.LittleEndian.Uint32(seg[16:20]))
				}
				continue
			}
			if seg[4] == kcp.IKCP_CMD_ACK {
				if sn := binary.LittleEndian.Uint32(seg[12:16]); !l.ackSeen || int32(sn-l.maxAckSN) > 0 {
					l.ackSeen, l.maxAckSN = true, sn
				}
				c.laneConfirm(l, binary.LittleEndian.Uint32(seg[16:20]))
				dbg("ack sn %d una %d", binary.LittleEndian.Uint32(seg[12:16]), binary.LittleEndian.Uint32(seg[16:20]))
			}
			k = l.snd
		default:
			c.drop(dropMalformed)
			return
		}
		if k.Input(seg, typ, false) < 0 {
			c.drop(dropMalformed)
			return
		}
	}
	c.expireLanes(c.shard.now) // the ACKs may show a lapsed message lost
	c.laneDeliver(l)
}

// laneNewRecvEpoch replaces the receiving KCP for the peer's new epoch.
// Whatever the old one held out of order is dropped: the peer sends again
// whatever of it has not expired.
func (c *Conn) laneNewRecvEpoch(l *lane, epoch uint32) {
	l.rcv = c.newLaneKCP(c.id^epoch, c.laneRecvOutput(l))
	l.rcvEpoch = epoch
	l.rcvFirst = true
}

// laneConfirm drops acknowledged messages from the send side: una says
// every segment below it arrived.
func (c *Conn) laneConfirm(l *lane, una uint32) {
	if int32(una-l.sndUna) <= 0 {
		return
	}
	l.sndUna = una
	i := 0
	recompute := false
	for ; i < len(l.inflight) && int32(l.inflight[i].lastSN-una) < 0; i++ {
		m := &l.inflight[i]
		l.queued -= len(m.data)
		if m.lapsed {
			l.lapsed-- // it arrived after all
		}
		if m.expiry != 0 && m.expiry == l.minExpiry {
			recompute = true
		}
		*m = laneMsg{}
	}
	l.inflight = l.inflight[i:]
	if len(l.inflight) == 0 {
		l.inflight = l.inflight[:0:0] // let the old array go
	}
	if recompute {
		l.recomputeExpiry()
	}
}

// laneDeliver hands the lane's complete messages to the application.
func (c *Conn) laneDeliver(l *lane) {
	buf := c.shard.recvBuf
	for c.state != stateClosed {
		n := l.rcv.PeekSize()
		if n < 0 {
			return
		}
		if n > len(buf) {
			c.terminate(&ProtocolError{Reason: "peer sent a message larger than MaxMessageSize"}, closeProtocol, true)
			return
		}
		n = l.rcv.Recv(buf)
		if n < 0 {
			return
		}
		x, k := binary.Uvarint(buf[:n])
		if k <= 0 || x > 1<<32-1 {
			c.terminate(&ProtocolError{Reason: "bad lane message header"}, closeProtocol, true)
			return
		}
		ord := l.rcvNext + uint32(x)
		if l.rcvFirst {
			ord = uint32(x)
		}
		l.rcvFirst, l.rcvNext = false, ord+1
		if int32(ord-l.delivered) < 0 {
			// Sent again after a reset, but it had already arrived.
			continue
		}
		if skipped := ord - l.delivered; skipped > 0 {
			l.ctr.skipped.Add(uint64(skipped))
		}
		l.delivered = ord + 1
		dbg("deliver %d", ord)
		l.ctr.msgsIn.Add(1)
		c.traffic.msgsIn.Add(1)
		c.shard.traffic.msgsIn.Add(1)
		// After a local Close the application no longer wants data; keep
		// draining KCP so its window stays open while we linger.
		if c.state == stateEstablished {
			c.callLaneData(l.id, buf[k:n])
		}
	}
}
