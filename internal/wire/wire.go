// Package wire is uxp's wire format: the registry of every message type and
// frame type, the transport header, a view of KCP segments, and the codecs
// of the frame bodies. docs/protocol.md is the normative description; this
// package is its codec. All integers are little-endian.
//
// The package is pure: it does no I/O, reads no clock and keeps no state.
// Every decoder checks lengths before it slices, and a fixed-size body must
// have exactly its size; peer input never panics.
package wire

import "encoding/binary"

// ProtocolVersion is the version a handshake carries.
/* Specification constant */
const ProtocolVersion = 1

// Message types: the first byte of every datagram.
/* Specification constants */
const (
	MsgInitiation  byte = 1 // handshake initiation (docs/protocol.md section 4)
	MsgResponse    byte = 2 // handshake response
	MsgCookieReply byte = 3 // cookie reply to an initiation under load
	MsgTransport   byte = 4 // a sealed frame, behind a TransportHeader
	MsgReset       byte = 5 // stateless reset
)

// Frame types: the first byte of a transport packet's plaintext.
/* Specification constants */
const (
	FrameKCP           byte = 1  // body: KCP segments of lane 0
	FramePing          byte = 2  // body: Ping (PingSize bytes)
	FramePong          byte = 3  // body: Pong (PongSize bytes)
	FrameClose         byte = 4  // body: Close
	FrameFEC           byte = 5  // body: one fec shard (fec/doc.go)
	FrameLoss          byte = 6  // body: Loss (LossSize bytes)
	FrameRekey         byte = 7  // body: Rekey (RekeySize bytes)
	FramePathChallenge byte = 8  // body: token (PathTokenSize bytes)
	FramePathResponse  byte = 9  // body: the challenge's token
	FrameLane          byte = 10 // body: lane (u8) | KCP segments
	FrameDatagram      byte = 11 // body: the message
	FrameLatest        byte = 12 // body: Latest header | the message
	FrameMTUProbe      byte = 13 // body: probe id u32 | zero padding to the probe size
	FrameMTUAck        byte = 14 // body: MTUAck (MTUAckSize bytes)
	FrameFragment      byte = 15 // body: Fragment header | bytes of an inner frame
)

// frameNames is the registry of frame types, for Known and FrameName.
var frameNames = [...]string{
	FrameKCP:           "kcp",
	FramePing:          "ping",
	FramePong:          "pong",
	FrameClose:         "close",
	FrameFEC:           "fec",
	FrameLoss:          "loss",
	FrameRekey:         "rekey",
	FramePathChallenge: "path-challenge",
	FramePathResponse:  "path-response",
	FrameLane:          "lane",
	FrameDatagram:      "datagram",
	FrameLatest:        "latest",
	FrameMTUProbe:      "mtu-probe",
	FrameMTUAck:        "mtu-ack",
	FrameFragment:      "fragment",
}

// KnownFrame reports whether t is a frame type of this protocol version.
func KnownFrame(t byte) bool { return int(t) < len(frameNames) && frameNames[t] != "" }

// FrameName returns a frame type's name, or "unknown".
func FrameName(t byte) string {
	if !KnownFrame(t) {
		return "unknown"
	}
	return frameNames[t]
}

// Transport packet. 9-byte header, then the sealed frame:
//
//	 0      1                 5                                9
//	+------+-----------------+--------------------------------+
//	| type | receiver (u32)  | P | counter, low 31 bits (u32) |
//	+------+-----------------+--------------------------------+
//	| AEAD( frame type (1) | frame body ) ... | tag (16)      |
//	+---------------------------------------------------------+
//
// The 9 header bytes are the AEAD's associated data. The packet carries
// only the low 31 bits of its 64-bit counter; bit 31 of that word (P) is
// the key phase. The receiver rebuilds the full counter, which is the
// AEAD's nonce, from the highest counter it accepted (ExpandCounter): a
// wrong guess only fails authentication.
/* Specification constants */
const (
	TransportHeaderSize = 9
	TagSize             = 16
	FrameHeaderSize     = 1

	// CounterBits is how many low bits of the counter a packet carries.
	CounterBits = 31
	// counterMask selects them; the bit above is the key phase.
	counterMask  = 1<<CounterBits - 1
	keyPhaseMask = 1 << CounterBits

	// TransportOverhead is what a transport packet adds around a frame body.
	TransportOverhead = TransportHeaderSize + FrameHeaderSize + TagSize
	// MinTransportSize is the shortest valid transport packet: an empty
	// frame body.
	MinTransportSize = TransportOverhead
)

// TransportHeader is a view of the first TransportHeaderSize bytes of a
// transport packet.
type TransportHeader []byte

// Receiver is the session ID the packet is for.
func (h TransportHeader) Receiver() uint32 { return binary.LittleEndian.Uint32(h[1:5]) }

// CounterLow is the low CounterBits bits of the packet's counter; the
// receiver rebuilds the rest (ExpandCounter).
func (h TransportHeader) CounterLow() uint32 {
	return binary.LittleEndian.Uint32(h[5:9]) & counterMask
}

// KeyPhase is which of the two live key generations sealed the packet.
func (h TransportHeader) KeyPhase() uint8 {
	return uint8(binary.LittleEndian.Uint32(h[5:9]) >> CounterBits)
}

// PutTransportHeader writes a transport header into b[:TransportHeaderSize]:
// the low CounterBits bits of counter, and phase (0 or 1).
func PutTransportHeader(b []byte, receiver uint32, counter uint64, phase uint8) {
	_ = b[TransportHeaderSize-1]
	b[0] = MsgTransport
	binary.LittleEndian.PutUint32(b[1:5], receiver)
	binary.LittleEndian.PutUint32(b[5:9], uint32(counter)&counterMask|uint32(phase&1)<<CounterBits)
}

// ParseTransportHeader validates the fixed part of a transport packet
// without touching its ciphertext.
func ParseTransportHeader(b []byte) (TransportHeader, bool) {
	if len(b) < MinTransportSize || b[0] != MsgTransport {
		return nil, false
	}
	return TransportHeader(b[:TransportHeaderSize]), true
}

// ExpandCounter rebuilds a full counter from its low CounterBits bits: the
// value with those bits nearest to next, the counter the receiver expects
// (one above the highest it accepted). It is exact while the true counter
// lies within 2^30 of next, far beyond any replay window; outside that a
// packet decodes to a wrong nonce and fails authentication. The result is
// never negative: near 0 it rounds up.
func ExpandCounter(next uint64, low uint32) uint64 {
	const (
		span = 1 << CounterBits
		half = span / 2
	)
	c := next&^uint64(counterMask) | uint64(low&counterMask)
	switch {
	case c < next && next-c >= half && c <= ^uint64(0)-span:
		c += span
	case c > next && c-next > half && c >= span:
		c -= span
	}
	return c
}
