package uxp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/uxp-go/uxp/internal/arq"
	"github.com/uxp-go/uxp/internal/replay"
	"github.com/uxp-go/uxp/internal/wire"
)

// The session's send side: posted work into the lanes, frames sealed into
// the shard's send batch. Everything here runs on c.shard's goroutine.

// pump moves posted work into the session: queued messages into KCP, a
// close request into the closing state. Then it flushes KCP and
// reschedules.
func (c *Conn) pump(now time.Time) {
	if c.state == stateClosed || !c.pumpWritable() { // writable.go
		return
	}
	s := c.shard
	if !c.added {
		c.added = true
		s.conns[c] = struct{}{}
		if c.isClient {
			c.tr.established(c.id, c.remoteAP)
			c.callReady()
			close(c.ready)
			if c.state == stateClosed {
				return
			}
			if c.hb.pingDue(now) {
				c.sendPing(now) // also confirms the keys to the server
			}
		}
	}
	c.mu.Lock()
	pend := c.pend
	c.pend = c.pendSpare[:0]
	taken := c.pendBytes
	closeReq := c.closeReq
	c.takeShared() // broadcast.go
	c.mu.Unlock()

	direct := false // some message went straight into KCP
	budget := c.admission(c.admitBudget(now))
	used := 0 // bytes that went straight into KCP (charged to the pacer at the flush)
	for b := pend; len(b) >= pendHeaderSize; {
		n := int(binary.LittleEndian.Uint32(b))
		kind, arg := b[4], int(b[5])
		deadline := c.ep.expiryOf(int64(binary.LittleEndian.Uint64(b[6:14])))
		// whole is the message with its pend header in front, read by
		// now: the lanes may write their own header over it.
		whole, room := b[:pendHeaderSize+n], pendHeaderSize
		msg := whole[room:]
		b = b[pendHeaderSize+n:]
		if kind&pendShared != 0 {
			kind, msg = c.nextShared(kind) // broadcast.go
			whole, room = msg, 0           // shared by other sessions: read-only
		}
		switch {
		case c.state == stateHalfOpen:
			// Cannot happen: a server's session is announced, and so
			// written to, only once established.
		case kind == pendReliable:
			if c.arq.EnqueueRoom(now, arg, whole, room, deadline, raise(budget, len(msg))) {
				direct = true
				used += len(msg)
				if budget != arq.NoLimit {
					budget = max(budget-len(msg), 0)
				}
			}
		default:
			c.sendDatagram(kind, arg, msg)
		}
	}
	c.pendSpare = pend[:0]
	if taken > 0 {
		// Publish the bytes now in KCP before un-counting them from the
		// queue, so Write's limit check never sees them in neither.
		c.noteQueued()
		c.mu.Lock()
		c.pendBytes -= taken
		c.mu.Unlock()
	}
	if c.wndOpen.Load() && c.wndOpen.Swap(false) { // a plain load on the hot path
		c.takeOpenWindow()
	}
	resumed := c.recvResume.Swap(false) && c.state != stateHalfOpen
	if resumed {
		c.deliverLanes(false) // KCP tells the peer its reopened window in the flush below
		if c.state == stateClosed {
			return
		}
	}
	if closeReq && c.state == stateEstablished {
		c.startClosing(now)
	}
	if c.state == stateHalfOpen {
		c.reschedule(now)
		return
	}
	c.arq.Expire(now)
	if c.cong.gated {
		c.drainDatagrams(now) // cc_gate.go
		// The datagrams just sent took pacer tokens the budget above
		// still counts: reliable data gets what is left, so that a
		// backlog of it cannot push the pacer into debt ahead of the
		// next datagrams (which go first: they cannot wait long).
		// With per-segment admission the messages that went straight
		// in wait unsent in KCP, which admission subtracts already.
		budget = c.admission(c.admitBudget(now))
		if c.arq.Unsent() == 0 {
			budget = max(budget-used, 0)
		}
	}
	admitted := c.admit(now, budget)
	c.setSendBudget(c.admitBudget(now)) // new segments of this flush
	newData := admitted || direct || c.arq.CanSendNew()
	switch {
	case c.cong.gated && !(newData || closeReq || resumed) && c.arq.AcksHeld(now):
		// Thinned ACKs wait for the ACK policy (cc_gate.go
		// sessionAcks); nothing new to send with them.
	case c.fec.enc == nil || newData || closeReq || resumed:
		c.arq.Flush(now)
	default:
		// The ACKs owed go when the ACK policy says: with FEC, not while
		// a group the decoder holds may still fill a hole they would
		// report (sessionAcks).
		c.arq.FlushAcks(now)
	}
	c.congestionTick(now)
	c.noteQueued()
	c.arq.CheckWindows(now) // new data for a closed window
	if c.closingTick(now) {
		return
	}
	c.rekeyTick(now)
	c.reschedule(now)
}

// sendFrame seals one frame into a transport packet and sends it to the
// peer.
func (c *Conn) sendFrame(kind byte, body []byte) {
	c.sendFrameTo(kind, nil, body, c.remoteAP)
}

// sendFrameTo seals one frame and sends it to to. It returns the bytes
// sent.
func (c *Conn) sendFrameTo(kind byte, hdr, body []byte, to netip.AddrPort) int {
	if c.state == stateClosed && !c.draining || c.exhausted {
		return 0
	}
	if c.sendCounter >= replay.RejectAfter {
		// Never wrap or reuse a nonce: refuse to send. The session ends
		// with ErrCounterExhausted at its next timer (reschedule).
		c.exhausted = true
		return 0
	}
	if f := c.ep.set.hooks.rewriteFrame; f != nil {
		f(kind, body)
	}
	s := c.shard
	ctr := c.sendCounter
	c.sendCounter++
	key, phase := c.sealKey()
	// Seal in place in the shard's send batch (sendbatch.go); the
	// datagram leaves when the current event ends.
	b := s.sendRoom()[:wire.TransportHeaderSize]
	wire.PutTransportHeader(b, c.id, ctr, phase)
	b = append(b, kind)
	b = append(b, hdr...)
	b = append(b, body...)
	pkt := key.send.Seal(b[:wire.TransportHeaderSize], ctr, b[wire.TransportHeaderSize:], b[:wire.TransportHeaderSize])
	s.commitSend(len(pkt), to, c)
	c.hb.sent(s.now)
	if kind == wire.FrameClose {
		// The endpoint may close its socket right after this (a client
		// whose only session ended): send now.
		s.flushSends()
	}
	c.traffic.packetsOut.Add(1)
	c.traffic.bytesOut.Add(uint64(len(pkt)))
	s.traffic.packetsOut.Add(1)
	s.traffic.bytesOut.Add(uint64(len(pkt)))
	return len(pkt)
}
