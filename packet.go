package uxp

import (
	"encoding/binary"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Wire format. docs/protocol.md is the normative description; this file is
// its codec. All integers are little-endian.
//
// Every datagram starts with a one-byte message type.
//
// Transport (type 4), 16-byte header, then the sealed frame:
//
//	 0      1      2      3      4                 8                         16
//	+------+------+------+------+-----------------+-------------------------+
//	| type | flags| rsv  | rsv  | receiver (u32)  | counter (u64)           |
//	+------+------+------+------+-----------------+-------------------------+
//	| AEAD( frame type (1) | frame body ) ... | tag (16)                    |
//	+-----------------------------------------------------------------------+
//
// The 16 header bytes are the AEAD's associated data and the counter is its
// nonce, so the header cannot be altered and no (key, nonce) pair repeats.
//
// flags: bit 0 is the key phase (rekey.go): which of the two live key
// generations sealed the packet. Bits 1..7 and bytes 2..3 are reserved and
// must be zero.

/* Specification constants */
const (
	protocolVersion = 1

	msgInitiation byte = 1
	msgResponse   byte = 2
	msgTransport  byte = 4

	transportHeaderSize = 16
	tagSize             = 16
	frameHeaderSize     = 1

	// Frame types, the first byte of a transport packet's plaintext.
	frameKCP   byte = 1 // body: one or more KCP segments
	framePing  byte = 2 // body: pingSize bytes (conn_loop.go)
	framePong  byte = 3 // body: pongSize bytes (conn_loop.go)
	frameClose byte = 4 // body: see closeFrame (conn_close.go)
	// frameFEC (5) and frameLoss (6) are in fec_session.go.
	// frameRekey (7) is in rekey.go; framePathChallenge (8) and
	// framePathResponse (9) are in path.go.

)

/* Derived constants */
const (
	// transportOverhead is what a transport packet adds around a frame body.
	transportOverhead = transportHeaderSize + frameHeaderSize + tagSize
	// minTransportSize is the shortest valid transport packet: an empty
	// frame body.
	minTransportSize = transportOverhead
	kcpOverhead      = kcp.IKCP_OVERHEAD

	// maxDatagram is the receive buffer size. Anything longer than
	// settings.mtu is malformed anyway; this just must not truncate silently.
	maxDatagram = 2048
)

// transportHeader is a view of the first transportHeaderSize bytes of a
// transport packet.
type transportHeader []byte

func (h transportHeader) receiver() uint32 { return binary.LittleEndian.Uint32(h[4:8]) }
func (h transportHeader) counter() uint64  { return binary.LittleEndian.Uint64(h[8:16]) }
func (h transportHeader) keyPhase() uint8  { return h[1] & flagKeyPhase }

// flagKeyPhase is the key-phase bit of the transport header's flags byte.
/* Specification constant */
const flagKeyPhase = 0x01

// putTransportHeader writes a transport header into b[:transportHeaderSize].
// phase is the key phase, 0 or 1.
func putTransportHeader(b []byte, receiver uint32, counter uint64, phase uint8) {
	_ = b[transportHeaderSize-1]
	b[0] = msgTransport
	b[1], b[2], b[3] = phase&flagKeyPhase, 0, 0
	binary.LittleEndian.PutUint32(b[4:8], receiver)
	binary.LittleEndian.PutUint64(b[8:16], counter)
}

// parseTransportHeader validates the fixed part of a transport packet
// without touching its ciphertext. Reserved bits must be zero, so that they
// can be given a meaning later without ambiguity.
func parseTransportHeader(b []byte) (transportHeader, bool) {
	if len(b) < minTransportSize || b[0] != msgTransport || b[1]&^flagKeyPhase|b[2]|b[3] != 0 {
		return nil, false
	}
	return transportHeader(b[:transportHeaderSize]), true
}
