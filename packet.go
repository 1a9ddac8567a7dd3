package uxp

import (
	"github.com/uxp-go/uxp/internal/wire"
)

// The wire format lives in internal/wire: the message and frame types, the
// transport header, KCP segments and the frame body codecs. docs/protocol.md
// is its normative description. What is left here is the root's view of
// the transport header for the read path (endpoint.go), and a check on the
// frame type and lane message kinds lanes.go still defines itself until
// the arq layer moves (it encodes with them; wire.AppendLaneHeader is
// its replacement).

// maxDatagram is the receive buffer size. Anything longer than settings.mtu
// is malformed anyway; this just must not truncate silently.
/* Implementation constant */
const maxDatagram = 2048

var (
	_ = [1]struct{}{}[frameLane-wire.FrameLane]
	_ = [1]struct{}{}[laneMsgPlain-wire.LaneMsgPlain]
	_ = [1]struct{}{}[laneMsgSkip-wire.LaneMsgSkip]
	_ = [1]struct{}{}[laneMsgDeadline-wire.LaneMsgDeadline]
)

// transportHeader is the root's view of a transport header
// (wire.TransportHeader).
type transportHeader []byte

func (h transportHeader) receiver() uint32 { return wire.TransportHeader(h).Receiver() }

// parseTransportHeader validates the fixed part of a transport packet
// (wire.ParseTransportHeader).
func parseTransportHeader(b []byte) (transportHeader, bool) {
	h, ok := wire.ParseTransportHeader(b)
	return transportHeader(h), ok
}
