package uxp

// Negotiation: the handshake carries each side's packet size (KCP.MTU)
// and lane count (docs/protocol.md, sections 3.1 and 3.2).
//
//   - Packet size: the session uses the smaller of the two. The receiver
//     of each side still drops datagrams longer than its own MTU; neither
//     sends any longer than the smaller one.
//   - Lanes: the counts must be equal (a lane message for a lane the
//     receiver does not have cannot be delivered, and one lane frames
//     differently from several). Priorities and deadlines are each
//     sender's own and need not match.
//   - Absent (zero, as sent by a peer from before negotiation): assumed
//     equal to this side's own value, which is how such peers behaved.
//   - Irreconcilable: different lane counts, or a packet size at which
//     this side's MaxMessageSize no longer fits in KCP's fragment limit.
//     The server answers with an authenticated statusIncompatible that
//     carries its own values; the client's Start fails with an
//     *IncompatibleError. The server counts it and traces it.

// negotiation is the outcome of comparing the two sides' parameters.
type negotiation struct {
	mtu int                // the session's packet size
	err *IncompatibleError // nil: compatible
}

// negotiate compares the peer's parameters (zero: absent) with ours:
// its packet size, its lane count and the smallest packet size at which
// its MaxMessageSize still fits.
func (s *settings) negotiate(peerMTU, peerLanes, peerMinMTU int) negotiation {
	n := negotiation{mtu: s.mtu}
	if peerLanes != 0 && peerLanes != len(s.lanes) {
		n.err = &IncompatibleError{Field: "Lanes", Local: len(s.lanes), Remote: peerLanes}
		return n
	}
	if peerMTU != 0 {
		n.mtu = min(s.mtu, peerMTU)
	}
	if n.mtu < max(s.minMTU(), peerMinMTU) {
		n.err = &IncompatibleError{Field: "MTU", Local: s.mtu, Remote: peerMTU}
	}
	return n
}

// minMTU is the smallest packet size at which MaxMessageSize, with its
// lane header, still fits in KCP's fragment limit and the receive window.
// resolve computes it once (minPacket).
func (s *settings) minMTU() int { return s.minPacket }

func (s *settings) computeMinMTU() int {
	m := minMTU
	for m < s.mtu && s.maxMessage > s.maxMessageLimitAt(m) {
		m++
	}
	return m
}

// hello is what this side's initiation announces.
func (s *settings) hello() helloParams {
	if s.hooks.oldHello {
		return helloParams{connectData: s.connectData}
	}
	return helloParams{mtu: s.mtu, lanes: len(s.lanes), minMTU: s.minMTU(), connectData: s.connectData}
}

// answer is what a server's response says besides the session: its own
// packet size and lane count, and the application's code and data.
func (s *settings) answer(code uint16, data []byte) answerInfo {
	if s.hooks.oldHello {
		return answerInfo{code: code, data: data} // as a server from before negotiation
	}
	return answerInfo{mtu: s.mtu, lanes: len(s.lanes), code: code, data: data}
}

// MTU returns the session's largest packet size: the smaller of the two
// sides' Config.KCP.MTU (for a peer from before negotiation, this side's
// own). Path MTU discovery searches up to it; PathMTU is the size in use.
func (c *Conn) MTU() int { return c.mtu }

// kcpMTU and mss are settings.kcpMTU and mss at the session's packet size.
func (c *Conn) kcpMTU() int { return c.ep.set.kcpMTUAt(c.curMTU()) }
func (c *Conn) mss() int    { return c.ep.set.mssAt(c.curMTU()) }

// ConnectData returns the connect data of the session's handshake: on a
// server, what the client sent (Config.ConnectData); on a client, what it
// sent itself. Nil when there was none. The caller must not modify it.
func (c *Conn) ConnectData() []byte { return c.connectData }

// AcceptData returns what the server's ConnectHandler sent back with its
// acceptance (ConnectRequest.Accept): on a client, as received; on a
// server, as sent. Nil when there was none. The caller must not modify it.
func (c *Conn) AcceptData() []byte { return c.acceptData }
