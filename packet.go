package uxp

import (
	"github.com/uxp-go/uxp/internal/wire"
)

// The wire format lives in internal/wire: the message and frame types, the
// transport header, KCP segments and the frame body codecs. docs/protocol.md
// is its normative description.
//
// The names below are the root's remaining aliases of it, for the files the
// arq layer takes over (lanes.go, shard.go, kcp_*.go) and for the batch I/O
// code; new code uses wire directly.

/* Derived constants */
const (
	msgTransport        = wire.MsgTransport
	transportHeaderSize = wire.TransportHeaderSize
	frameKCP            = wire.FrameKCP
	kcpOverhead         = wire.SegmentHeaderSize

	// maxDatagram is the receive buffer size. Anything longer than
	// settings.mtu is malformed anyway; this just must not truncate silently.
	maxDatagram = 2048
)

// lanes.go still defines frameLane, until the arq layer moves: it must
// agree with wire.
var _ = [1]struct{}{}[frameLane-wire.FrameLane]

// transportHeader is the root's view of a transport header
// (wire.TransportHeader).
type transportHeader []byte

func (h transportHeader) receiver() uint32 { return wire.TransportHeader(h).Receiver() }
func (h transportHeader) counter() uint64  { return wire.TransportHeader(h).Counter() }
func (h transportHeader) keyPhase() uint8  { return wire.TransportHeader(h).KeyPhase() }

// putTransportHeader writes a transport header into b[:transportHeaderSize].
func putTransportHeader(b []byte, receiver uint32, counter uint64, phase uint8) {
	wire.PutTransportHeader(b, receiver, counter, phase)
}

// parseTransportHeader validates the fixed part of a transport packet
// (wire.ParseTransportHeader).
func parseTransportHeader(b []byte) (transportHeader, bool) {
	h, ok := wire.ParseTransportHeader(b)
	return transportHeader(h), ok
}
