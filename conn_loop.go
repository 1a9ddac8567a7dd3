package uxp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/replay"
	"github.com/uxp-go/uxp/internal/wire"
)

// This file is the session's side of the update worker: everything here
// runs on the goroutine of c.shard and touches shard-owned state only.

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
	for b := pend; len(b) >= pendHeaderSize; {
		n := int(binary.LittleEndian.Uint32(b))
		kind, arg := b[4], int(b[5])
		deadline := int64(binary.LittleEndian.Uint64(b[6:14]))
		msg := b[pendHeaderSize : pendHeaderSize+n]
		b = b[pendHeaderSize+n:]
		if kind&pendShared != 0 {
			kind, msg = c.nextShared(kind) // broadcast.go
		}
		switch {
		case c.state == stateHalfOpen:
			// Cannot happen: a server's session is announced, and so
			// written to, only once established.
		case kind == pendReliable:
			direct = c.enqueueLane(c.lanes[arg], msg, deadline) || direct
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
	c.expireLanes(now)
	admitted := c.admitLanes() || direct
	if c.fec.enc == nil || admitted || closeReq || resumed {
		c.flushLanes()
	} else if c.fec.dec.Groups() == 0 {
		// ACKs go at once, unless a group the decoder holds may still
		// fill a hole they would report: then they wait for KCP's tick,
		// so that a repair does not race a fast retransmission.
		c.flushAcks()
	}
	c.noteQueued()
	for _, l := range c.lanes {
		if l.wnd.peerWnd == 0 {
			c.checkWndProbe(l, now) // new data for a closed window
		}
	}
	if c.closingTick(now) {
		return
	}
	c.rekeyTick(now)
	c.reschedule(now)
}

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
		c.laneInput(c.lanes[0], body, kcp.IKCP_PACKET_REGULAR)
	case wire.FrameLane:
		c.laneFrameInput(body, kcp.IKCP_PACKET_REGULAR)
	case wire.FrameDatagram, wire.FrameLatest:
		c.datagramInput(pt[0], body)
	case wire.FrameFEC:
		c.fecInput(body, now)
	case wire.FrameLoss:
		l, ok := wire.ParseLoss(body)
		if !ok {
			c.drop(dropMalformed)
			return
		}
		c.takeLossReport(l)
	case wire.FramePing:
		p, ok := wire.ParsePing(body)
		if !ok {
			c.drop(dropMalformed)
			return
		}
		c.answerPing(p, now)
	case wire.FramePong:
		p, ok := wire.ParsePong(body)
		if !ok {
			c.drop(dropMalformed)
			return
		}
		c.takePong(p, now)
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
	ctr := h.Counter()
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

// Heartbeat frames. A ping carries the client's clock, plus the server
// timestamp from the last pong and how long the client held it, which gives
// the server an RTT sample too:
//
//	ping: client time (u64 ns) | last server time (u64 ns) | held for (u64 ns)
//	pong: client time echoed (u64 ns) | server time (u64 ns)
//
// The codecs are wire.Ping and wire.Pong.

func (c *Conn) clock(now time.Time) uint64 { return uint64(now.Sub(c.ep.epoch)) }

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
// this session can have seen (docs/protocol.md section 5.3): its clock
// below maxPeerClock; the echoed server time one this session sent in a
// pong; the hold time no longer than the time since that pong. The sample
// is then between zero and the age of the pong it answers. A ping that
// fails a check is dropped (Drops.Malformed) and not answered.
func (c *Conn) answerPing(ping wire.Ping, now time.Time) {
	peer, sent, held := ping.Clock, ping.LastPong, ping.Held
	clock := c.clock(now)
	if peer >= maxPeerClock || sent != 0 && (!c.hb.echoes.holds(sent) || held > clock-sent) {
		c.drop(dropMalformed)
		return
	}
	var b [wire.PongSize]byte
	wire.PutPong(b[:], wire.Pong{Echo: peer, Clock: clock})
	c.hb.echoes.sent(clock)
	c.sendFrame(wire.FramePong, b[:])
	c.peerTS, c.peerAt = peer, now // deadline.go
	// Server-side RTT: now - when we sent that pong - how long the client
	// sat on it; in [0, clock-sent] by the checks above.
	if sent != 0 {
		c.hb.pong(now.Add(-time.Duration(clock-sent-held)), now)
		c.publishRTT()
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
	c.hb.pong(now.Add(-time.Duration(clock-echo)), now)
	c.lastPong = now
	c.lastPongTS = peer
	c.peerTS, c.peerAt = c.lastPongTS, now // deadline.go
	c.publishRTT()
}

func (c *Conn) publishRTT() {
	c.rtt.Store(int64(c.hb.srtt))
	c.rttVar.Store(int64(c.hb.rttvar))
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
	if f := c.ep.set.testRewriteFrame; f != nil {
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

// onTimer runs when the session's deadline has passed.
func (c *Conn) onTimer(now time.Time) {
	if c.draining {
		c.drainTimer(now)
		return
	}
	switch {
	case c.state == stateHalfOpen && !now.Before(c.handshakeBy):
		// The client never confirmed: forget it silently.
		c.terminate(nil, CloseNormal, "", false)
		return
	case c.exhausted || c.sendCounter >= replay.RejectAfter:
		c.terminate(ErrCounterExhausted, CloseProtocolError, "", false)
		return
	case c.hb.idleExpired(now) && !c.overloadHeard():
		c.terminate(&IdleTimeoutError{}, CloseIdleTimeout, "", true)
		return
	}
	if c.state != stateHalfOpen {
		c.rekeyTick(now)
		c.pathTick(now)
		c.pmtuTick(now)
		if c.hb.pingDue(now) {
			c.sendPing(now)
		}
		c.fecTimers(now)
		c.laneTimers(now)
		c.noteQueued()
		if c.closingTick(now) {
			return
		}
	}
	c.reschedule(now)
}

// reschedule computes the session's next deadline: the earliest of its
// handshake, linger, heartbeat, idle, FEC, rekey, path, lane KCP and
// message-expiry deadlines.
func (c *Conn) reschedule(now time.Time) {
	d := c.hb.deadline()
	switch c.state {
	case stateHalfOpen:
		d = earlier(d, c.handshakeBy)
	case stateClosing:
		if c.ep.set.closeLinger > 0 {
			d = earlier(d, c.lingerDeadline())
		}
	}
	if c.state != stateHalfOpen {
		d = earlier(d, c.fecDeadline())
		d = earlier(d, c.rekeyDeadline())
		d = earlier(d, c.pathDeadline())
		d = earlier(d, c.pmtu.deadline())
		d = earlier(d, c.lanesDeadline(now))
	}
	if c.exhausted {
		d = earlier(d, now) // end the session (onTimer)
	}
	if !d.IsZero() && !d.After(now) {
		d = now.Add(time.Millisecond) // never spin on a deadline in the past
	}
	c.deadline = d
	c.shard.schedule(c)
}

// earlier returns the earlier of two deadlines, where the zero time means
// none.
func earlier(d, t time.Time) time.Time {
	if !t.IsZero() && (d.IsZero() || t.Before(d)) {
		return t
	}
	return d
}

// establish promotes a server session once the client proved it holds the
// keys, and announces it.
func (c *Conn) establish(now time.Time) {
	if c.ep.onAdmit != nil {
		if code := c.ep.onAdmit(c); code != CloseNormal {
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
	}
	c.state = stateEstablished
	c.hb.received(now)
	c.tr.established(c.id, c.remoteAP)
	if c.ep.onEstablished != nil {
		c.ep.onEstablished(c)
	}
	if c.state == stateEstablished {
		c.callReady()
	}
}

// terminate ends the session once: it tells the peer (if notify) with
// code and reason, runs the close callbacks, and unhooks the session from
// every table, at once or, when it told the peer, once the peer confirmed
// (draining, conn_close.go). err nil means a half-open session expired
// unannounced.
func (c *Conn) terminate(err error, code uint16, reason string, notify bool) {
	if c.state == stateClosed {
		return
	}
	announced := c.state != stateHalfOpen
	c.ep.noteClosed(err, code, announced)
	c.tr.closed(c.id, err, code, errors.Is(err, ErrPeerClosed), announced)
	drain := false
	if notify && announced {
		body := c.appendCloseFrame(nil, code, reason)
		if c.sendFrameTo(wire.FrameClose, nil, body, c.remoteAP) > 0 {
			c.closeBody, drain = body, true
		}
	}
	c.state = stateClosed
	c.mu.Lock()
	var local *CloseError
	if c.closeReq && err != nil && !(errors.As(err, &local) && !local.Remote) {
		// Closed locally, then ended otherwise (the peer's close, a
		// timeout, Server.Close): this side asked for the end, but it
		// says so only if nothing it wrote was lost.
		if c.lanesIdle() {
			err = ErrConnClosed
		} else {
			err = &CloseError{Code: CloseAbandoned, Reason: "the session ended before everything written was acknowledged: " + err.Error()}
		}
	}
	if c.err == nil {
		c.err = err
	}
	if c.err == nil {
		c.err = ErrConnClosed
	}
	c.pend = nil
	c.mu.Unlock()

	if drain {
		c.startDrain(c.shard.now)
	} else {
		c.free()
	}
	for _, l := range c.lanes {
		c.releaseProbe(l)
	}
	c.kcpQueued.Store(0)
	if announced {
		c.callClosed(err)
	}
	if c.ep.onConnClosed != nil {
		c.ep.onConnClosed(c, err, announced)
	}
	// Last, so that whoever waits on Done sees the callbacks' effects.
	close(c.done)
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

func (c *Conn) callClosed(err error) {
	defer func() {
		if r := recover(); r != nil {
			// The session has already ended: only log and count.
			c.ep.callbackPanicked("OnClosed", c.id, r)
		}
	}()
	c.handlerFor().OnClosed(c, err)
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
