package uxp

import (
	"net/netip"
	"time"

	"github.com/uxp-go/uxp/internal/wire"
	kcp "github.com/xtaci/kcp-go/v5"
)

// The session's receive side: one authenticated datagram from the shard
// to the frame's handler, and the callbacks that deliver to the
// application. Everything here runs on c.shard's goroutine.

// receive handles one datagram routed to this session: authenticate,
// replay-check, then dispatch the frame.
func (c *Conn) receive(b []byte, from netip.AddrPort, now time.Time) {
	s := c.shard
	if c.state == stateClosed {
		if c.draining {
			c.drainInput(b, now)
			return
		}
		c.drop(dropUnknownSession)
		return
	}
	if b[0] == wire.MsgReset {
		// The read loop checked its token (Client.handleControl).
		c.terminate(ErrStatelessReset, CloseNormal, "", false)
		return
	}
	pt, key, ok := c.open(b)
	if !ok {
		return
	}
	c.traffic.packetsIn.Add(1)
	c.traffic.bytesIn.Add(uint64(len(b)))
	s.traffic.packetsIn.Add(1)
	s.traffic.bytesIn.Add(uint64(len(b)))
	c.hb.received(now)
	if !c.fec.params.adaptive {
		c.lossTick(now)
	}
	c.keyHeard(key, now)
	// Routing is by session ID. An authentic, fresh packet from another
	// address starts validating that address (path.go); replies move only
	// once it is proven.
	c.notePath(from, len(b), now)

	if c.state == stateHalfOpen {
		c.establish(now)
		if c.state == stateClosed {
			return
		}
	}
	if len(pt) < wire.FrameHeaderSize {
		c.drop(dropMalformed)
		return
	}
	body := pt[wire.FrameHeaderSize:]
	switch pt[0] {
	case wire.FrameKCP:
		c.laneInput(0, body, kcp.IKCP_PACKET_REGULAR)
	case wire.FrameLane:
		c.laneFrameInput(body, kcp.IKCP_PACKET_REGULAR)
	case wire.FrameDatagram, wire.FrameLatest:
		c.datagramInput(pt[0], body)
	case wire.FrameFEC:
		c.fecInput(body, now)
	case wire.FrameLoss:
		if l, ok := wire.ParseLoss(body); ok {
			c.takeLossReport(l)
		} else {
			c.drop(dropMalformed)
		}
	case wire.FramePing:
		if p, ok := wire.ParsePing(body); ok {
			c.answerPing(p, now)
		} else {
			c.drop(dropMalformed)
		}
	case wire.FramePong:
		if p, ok := wire.ParsePong(body); ok {
			c.takePong(p, now)
		} else {
			c.drop(dropMalformed)
		}
	case wire.FrameClose:
		c.takeClose(body)
	case wire.FrameRekey:
		c.takeRekey(body, now)
	case wire.FramePathChallenge:
		c.answerChallenge(body, from)
	case wire.FramePathResponse:
		c.takePathResponse(body, from)
	case wire.FrameMTUProbe, wire.FrameMTUAck, wire.FrameFragment:
		c.pmtuInput(pt[0], body, now)
	default:
		c.drop(dropMalformed)
	}
}

// open authenticates a transport datagram and replay-checks it, counting
// a drop when it fails. It returns the plaintext frame and the key
// generation that opened it.
func (c *Conn) open(b []byte) ([]byte, *keySlot, bool) {
	h := wire.TransportHeader(b[:wire.TransportHeaderSize])
	// The packet carries the counter's low bits; the rest is the one
	// nearest the counter expected next. A wrong guess (a packet from
	// 2^30 counters away) only fails to authenticate.
	ctr := wire.ExpandCounter(c.replay.Next(), h.CounterLow())
	// Cheap check first: a replayed packet costs no decryption.
	if !c.replay.Check(ctr) {
		c.drop(dropReplay)
		return nil, nil, false
	}
	key := c.keys.slots[h.KeyPhase()]
	if key == nil {
		// No live key generation has this phase: a retired key, or garbage.
		c.drop(dropAuthFailed)
		return nil, nil, false
	}
	pt, err := key.recv.Open(b[wire.TransportHeaderSize:wire.TransportHeaderSize], ctr, b[wire.TransportHeaderSize:], b[:wire.TransportHeaderSize])
	if err != nil {
		c.drop(dropAuthFailed)
		return nil, nil, false
	}
	// Commit only now that the packet is authentic: a forged packet with a
	// huge counter cannot move the window.
	if !c.replay.Accept(ctr) {
		c.drop(dropReplay)
		return nil, nil, false
	}
	return pt, key, true
}

// establish promotes a server session once the client proved it holds the
// keys, and announces it.
func (c *Conn) establish(now time.Time) {
	if code := c.ep.owner.onAdmit(c); code != CloseNormal {
		// The server filled up, or began to shut down, while this
		// session was half-open. Tell the client (it sees a
		// *CloseError with the code) and end the session unannounced.
		c.sendFrame(wire.FrameClose, c.appendCloseFrame(nil, code, ""))
		err := ErrServerFull
		if code == CloseServerShutdown {
			err = ErrServerShuttingDown
		}
		c.terminate(err, code, "", false)
		return
	}
	c.state = stateEstablished
	c.hb.received(now)
	if sent := c.cong.handshakeSent.Load(); sent > 0 {
		c.handshakeRTT(now.Sub(c.ep.epoch)-time.Duration(sent), c.cong.handshakeResent.Load(), now)
	}
	c.tr.established(c.id, c.remoteAP)
	c.ep.owner.onEstablished(c)
	if c.state == stateEstablished {
		c.callReady()
	}
}

// Callbacks. Each runs with no SDK lock held; a panic closes only this
// session.

func (c *Conn) callReady() {
	defer c.recoverCallback("OnReady")
	c.handlerFor().OnReady(c)
}

// callLaneData delivers a lane's message: to OnNewLaneDataComing if the
// handler has it, else to OnNewDataComing.
func (c *Conn) callLaneData(lane int, b []byte) {
	h := c.handlerFor()
	if lh, ok := h.(LaneHandler); ok {
		defer c.recoverCallback("OnNewLaneDataComing")
		lh.OnNewLaneDataComing(c, lane, b)
		return
	}
	if lane != 0 {
		c.noteUnhandled(h, false, lane) // unhandled.go
	}
	defer c.recoverCallback("OnNewDataComing")
	h.OnNewDataComing(c, b)
}

func (c *Conn) recoverCallback(name string) {
	if r := recover(); r != nil {
		c.ep.callbackPanicked(name, c.id, r)
		c.terminate(&CallbackPanicError{Callback: name, Value: r}, CloseCallbackPanic, "callback "+name+" panicked", true)
	}
}

// drop counts a dropped datagram on the session and its worker.
func (c *Conn) drop(r dropReason) {
	c.drops.inc(r)
	c.shard.drops.inc(r)
}
