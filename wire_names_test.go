package uxp

import "github.com/uxp-go/uxp/internal/wire"

// The tests' names for internal/wire. They keep the tests, and above all
// vectors_test.go, as they were before the wire format moved: the vectors
// passing unchanged is the proof that the wire did not change.

const (
	msgTransport        = wire.MsgTransport
	transportHeaderSize = wire.TransportHeaderSize
	frameKCP            = wire.FrameKCP
	kcpOverhead         = wire.SegmentHeaderSize
	protocolVersion     = wire.ProtocolVersion
	msgInitiation       = wire.MsgInitiation
	msgResponse         = wire.MsgResponse
	msgCookieReply      = wire.MsgCookieReply
	msgReset            = wire.MsgReset
	tagSize             = wire.TagSize
	frameHeaderSize     = wire.FrameHeaderSize
	transportOverhead   = wire.TransportOverhead
	minTransportSize    = wire.MinTransportSize
	framePing           = wire.FramePing
	framePong           = wire.FramePong
	frameClose          = wire.FrameClose
	frameFEC            = wire.FrameFEC
	frameLoss           = wire.FrameLoss
	frameRekey          = wire.FrameRekey
	framePathChallenge  = wire.FramePathChallenge
	framePathResponse   = wire.FramePathResponse
	frameDatagram       = wire.FrameDatagram
	frameLatest         = wire.FrameLatest
	frameMTUProbe       = wire.FrameMTUProbe
	frameMTUAck         = wire.FrameMTUAck
	frameFragment       = wire.FrameFragment
	pingSize            = wire.PingSize
	pongSize            = wire.PongSize
	lossBodySize        = wire.LossSize
	pathTokenSize       = wire.PathTokenSize
	closeHeaderSize     = wire.CloseHeaderSize
	rekeyBodySize       = wire.RekeySize
	rekeyInit           = wire.RekeyInit
	rekeyAck            = wire.RekeyAck
)

// putTransportHeader is wire.PutTransportHeader.
func putTransportHeader(b []byte, receiver uint32, counter uint64, phase uint8) {
	wire.PutTransportHeader(b, receiver, counter, phase)
}

// rekeyFrame is wire.Rekey under the tests' names.
type rekeyFrame struct {
	kind  byte
	epoch uint32
	pub   [32]byte
}

func putRekeyFrame(b []byte, f rekeyFrame) {
	wire.PutRekey(b, wire.Rekey{Kind: f.kind, Epoch: f.epoch, Pub: f.pub})
}
