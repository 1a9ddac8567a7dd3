package uxp

import (
	"net/netip"

	"github.com/uxp-go/uxp/internal/wire"
)

// Negotiation: the handshake carries each side's packet size (KCP.MTU,
// or by default the most a 1500-byte Ethernet MTU carries in the family
// of the peer's address: settings.mtuFor) and lane count
// (docs/protocol.md, sections 3.1 and 3.2).
//
//   - Packet size: the session uses the smaller of the two. The receiver
//     of each side still drops datagrams longer than its own MTU (by
//     default the IPv4 size, the larger); neither sends any longer than
//     the smaller one.
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
//
// The cipher suite (docs/protocol.md section 5.1.3) is negotiated too: the
// client offers the suites it accepts and says whether it has AES
// instructions; the server picks one (chooseSuite) and names it in its
// response. Both travel inside Noise payloads, so the transcript
// authenticates them: an attacker who rewrites the offer or the choice
// makes the handshake fail, it cannot downgrade the cipher.

// negotiation is the outcome of comparing the two sides' parameters.
type negotiation struct {
	mtu int                // the session's packet size
	err *IncompatibleError // nil: compatible
}

// negotiate compares the parameters of the peer at peer (zero: absent)
// with ours toward it: its packet size, its lane count and the smallest
// packet size at which its MaxMessageSize still fits.
func (s *settings) negotiate(peer netip.AddrPort, peerMTU, peerLanes, peerMinMTU int) negotiation {
	own := s.mtuFor(peer)
	n := negotiation{mtu: own}
	if peerLanes != 0 && peerLanes != len(s.lanes) {
		n.err = &IncompatibleError{Field: "Lanes", Local: len(s.lanes), Remote: peerLanes}
		return n
	}
	if peerMTU != 0 {
		n.mtu = min(own, peerMTU)
	}
	if n.mtu < max(s.minMTU(), peerMinMTU) {
		n.err = &IncompatibleError{Field: "MTU", Local: own, Remote: peerMTU}
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

// hello is what this side's initiation to the server at peer announces.
func (s *settings) hello(peer netip.AddrPort) helloParams {
	if s.hooks.oldHello {
		return helloParams{connectData: s.connectData}
	}
	return helloParams{mtu: s.mtuFor(peer), lanes: len(s.lanes), minMTU: s.minMTU(), connectData: s.connectData,
		suites: s.suiteOffer(), suiteFlags: s.suiteFlags()}
}

// answer is what a server's response to the client at peer says besides
// the session: its own packet size toward it and lane count, the cipher
// suite (the session's, or the one it requires in a refusal; zero: none),
// and the application's code and data.
func (s *settings) answer(peer netip.AddrPort, suite Cipher, code uint16, data []byte) answerInfo {
	if s.hooks.oldHello {
		return answerInfo{code: code, data: data} // as a server from before negotiation
	}
	return answerInfo{mtu: s.mtuFor(peer), lanes: len(s.lanes), suite: byte(suite), suiteFlags: s.suiteFlags(), code: code, data: data}
}

// Cipher suite negotiation.

// allSuites is every suite this build implements, as an offer.
var allSuites = suiteBit(ChaCha20Poly1305) | suiteBit(Salsa20Poly1305) | suiteBit(AES256GCM)

func suiteBit(c Cipher) byte { return wire.SuiteBit(byte(c)) }

// headerCipher is the cipher an initiation's header names: the pinned one,
// or ChaCha20Poly1305. A server from before negotiation uses it as is.
func (s *settings) headerCipher() Cipher {
	if s.cipher != 0 {
		return s.cipher
	}
	return ChaCha20Poly1305
}

// suiteOffer is the set of suites a client accepts: only the pinned
// cipher, or all of them.
func (s *settings) suiteOffer() byte {
	if s.cipher != 0 {
		return suiteBit(s.cipher)
	}
	return allSuites
}

// suiteFlags says whether this side has AES instructions.
func (s *settings) suiteFlags() byte {
	if s.aesHardware {
		return wire.SuiteAESHardware
	}
	return 0
}

// chooseSuite is the server's choice of cipher for an initiation whose
// header names header and whose payload offers offer (zero: absent, a
// client from before negotiation) with peerFlags; own is the server's
// Config.Cipher (zero: negotiate) and aes whether it has AES
// instructions. ok is false when the two sides pinned different ciphers:
// the server then refuses with statusIncompatible and names own.
//
//   - Server pinned: its cipher, if the client accepts it.
//   - Client from before negotiation: its header's cipher.
//   - Client pinned (one suite offered): that one.
//   - Otherwise AES256GCM when both sides have AES instructions, else
//     ChaCha20Poly1305, as TLS 1.3 stacks choose. Salsa20Poly1305 is used
//     only when a side pins it.
func chooseSuite(own Cipher, aes bool, header Cipher, offer, peerFlags byte) (Cipher, bool) {
	if offer == 0 {
		offer = suiteBit(header)
	}
	offer &= allSuites
	switch {
	case own != 0:
		return own, offer&suiteBit(own) != 0
	case offer&(offer-1) == 0 && offer != 0:
		return header, offer == suiteBit(header) // a pinned client names it in both
	case aes && peerFlags&wire.SuiteAESHardware != 0 && offer&suiteBit(AES256GCM) != 0:
		return AES256GCM, true
	case offer&suiteBit(ChaCha20Poly1305) != 0:
		return ChaCha20Poly1305, true
	}
	return header, offer&suiteBit(header) != 0
}

// acceptSuite is the client's check of the suite a response names: the
// session's cipher, or false when this client did not offer it. A response
// without one (suite 0, a server from before negotiation) runs the
// initiation header's cipher, header, as such servers do.
func (s *settings) acceptSuite(suite byte, header Cipher) (Cipher, bool) {
	if suite == 0 {
		return header, true
	}
	c := Cipher(suite)
	return c, c.Valid() && s.suiteOffer()&suiteBit(c) != 0
}

// MTU returns the session's largest packet size: the smaller of the two
// sides' Config.KCP.MTU, each side's default (zero) being 1472 bytes for
// an IPv4 peer and 1452 for an IPv6 one (for a peer from before
// negotiation, this side's own). Path MTU discovery searches up to it;
// PathMTU is the size in use.
func (c *Conn) MTU() int { return c.mtu }

// kcpMTU is the lanes' KCP MTU at the session's packet size, with the FEC
// room reserved while frames go through the FEC encoder (fecSized).
func (c *Conn) kcpMTU() int { return c.ep.set.kcpMTUSized(c.curMTU(), c.fecSized.Load()) }

// ConnectData returns the connect data of the session's handshake: on a
// server, what the client sent (Config.ConnectData); on a client, what it
// sent itself. Nil when there was none. The caller must not modify it.
func (c *Conn) ConnectData() []byte { return c.connectData }

// AcceptData returns what the server's ConnectHandler sent back with its
// acceptance (ConnectRequest.Accept): on a client, as received; on a
// server, as sent. Nil when there was none. The caller must not modify it.
func (c *Conn) AcceptData() []byte { return c.acceptData }
