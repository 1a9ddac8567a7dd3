package uxp

import (
	"io"
	"net/netip"
	"time"

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/wire"
)

// The tests' names for internal/wire and internal/handshake. They keep the
// tests, and above all vectors_test.go, as they were before the wire format
// and the handshake defences moved: the vectors passing unchanged is the
// proof that the wire did not change.

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
	cookieLabel         = handshake.CookieLabel
	resetLabel          = handshake.ResetLabel
	cookieReplySize     = handshake.CookieReplySize
	cookieNonceSize     = handshake.CookieNonceSize
	resetSize           = wire.ResetSize
	knownFlags          = wire.FlagIK | wire.FlagPSK
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

func mac1Key(server PublicKey, psk []byte) [32]byte { return handshake.MAC1Key(server, psk) }
func labelKey(label string, server PublicKey) [32]byte {
	return handshake.LabelKey(label, server)
}
func computeMAC1(key *[32]byte, msg []byte) [macSize]byte { return handshake.ComputeMAC1(key, msg) }
func mac1Offset(pkt []byte) int                           { return handshake.MAC1Offset(pkt) }
func sourceKey(a netip.Addr) [16]byte                     { return handshake.SourceKey(a) }
func resetKey(static PrivateKey) [32]byte                 { return handshake.ResetKey(static) }
func resetToken(key *[32]byte, id uint32) [resetTokenSize]byte {
	return handshake.ResetToken(key, id)
}
func putReset(b *[resetSize]byte, id uint32, token *[resetTokenSize]byte) {
	wire.PutReset(b, id, token)
}
func openCookieReply(b, init []byte, encKey *[32]byte) ([macSize]byte, error) {
	return handshake.OpenCookieReply(b, init, encKey)
}
func parseReset(b []byte) (uint32, [resetTokenSize]byte, bool)   { return wire.ParseReset(b) }
func newStaticKey(priv PrivateKey) (*handshake.StaticKey, error) { return handshake.NewStaticKey(priv) }
func initiationLen(flags byte) int                               { return handshake.InitiationLen(flags) }
func putMAC2(pkt []byte, cookie *[macSize]byte)                  { handshake.PutMAC2(pkt, cookie) }

// testCookieChecker is handshake.CookieChecker under the tests' names.
type testCookieChecker struct{ *handshake.CookieChecker }

func newCookieChecker(server PublicKey, rng io.Reader) testCookieChecker {
	return testCookieChecker{handshake.NewCookieChecker(server, rng)}
}

func (c testCookieChecker) reply(pkt []byte, addr netip.AddrPort, now time.Time) ([cookieReplySize]byte, error) {
	return c.Reply(pkt, addr, now)
}

func (c testCookieChecker) validMAC2(pkt []byte, addr netip.AddrPort, now time.Time) bool {
	return c.ValidMAC2(pkt, addr, now)
}

// counter is h's counter as the tests' datagrams carry it: their
// counters stay below 2^31, so the low bits are the whole counter.
func (h transportHeader) counter() uint64 { return uint64(wire.TransportHeader(h).CounterLow()) }

// datagramOverhead is what a datagram adds around its message at most: the
// transport overhead and a latest-datagram header (Conn.MaxDatagramSize).
const datagramOverhead = transportOverhead + wire.LatestSize
