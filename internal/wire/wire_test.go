package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransportHeader(t *testing.T) {
	b := make([]byte, MinTransportSize)
	PutTransportHeader(b, 0xdeadbeef, 1<<40+5, 0)
	require.Equal(t, []byte{MsgTransport, 0xef, 0xbe, 0xad, 0xde, 5, 0, 0, 0}, b[:TransportHeaderSize])
	h, ok := ParseTransportHeader(b)
	require.True(t, ok)
	require.Equal(t, uint32(0xdeadbeef), h.Receiver())
	require.Equal(t, uint32(5), h.CounterLow())
	for n := range MinTransportSize {
		_, ok := ParseTransportHeader(b[:n])
		require.False(t, ok)
	}
	require.Equal(t, uint8(0), h.KeyPhase())
	PutTransportHeader(b, 0xdeadbeef, 1<<31+7, 1)
	require.Equal(t, []byte{7, 0, 0, 0x80}, b[5:9], "low 31 bits, then the key phase")
	h, ok = ParseTransportHeader(b)
	require.True(t, ok)
	require.Equal(t, uint8(1), h.KeyPhase())
	require.Equal(t, uint32(7), h.CounterLow())
	for _, typ := range []byte{0, MsgInitiation, MsgReset, MsgTransport | 0x80, 0xff} {
		bad := append([]byte(nil), b...)
		bad[0] = typ
		_, ok := ParseTransportHeader(bad)
		require.False(t, ok, "type %#x", typ)
	}
}

// TestExpandCounter: the full counter comes back from its low 31 bits
// wherever it lies within 2^30 of the counter expected, across every
// wrap of the low bits, and never below 0.
func TestExpandCounter(t *testing.T) {
	const span, half = uint64(1) << CounterBits, uint64(1) << (CounterBits - 1)
	for _, next := range []uint64{0, 1, 5, half - 1, half, half + 1, span - 1, span, span + 1, 3*span + 17, 1 << 62, 1<<64 - 1<<13 - 1} {
		for _, d := range []int64{0, 1, -1, 8128, -8128, int64(half), -int64(half) + 1, 1 << 20, -(1 << 20)} {
			c := next + uint64(d)
			if (d < 0 && uint64(-d) > next) || (d > 0 && c < next) {
				continue // below 0, or past 2^64
			}
			require.Equal(t, c, ExpandCounter(next, uint32(c)&counterMask), "next %d, counter %d", next, c)
		}
	}
	// Near 0 a low value far "behind" rounds up instead of going negative.
	require.Equal(t, uint64(span-1), ExpandCounter(0, uint32(span-1)))
}

// TestFrameRegistry pins every frame type's number: they are the wire.
func TestFrameRegistry(t *testing.T) {
	want := map[string]byte{
		"kcp": 1, "ping": 2, "pong": 3, "close": 4, "fec": 5, "loss": 6, "rekey": 7,
		"path-challenge": 8, "path-response": 9, "lane": 10, "datagram": 11, "latest": 12,
		"mtu-probe": 13, "mtu-ack": 14, "fragment": 15,
	}
	for name, v := range want {
		require.Equal(t, name, FrameName(v))
		require.True(t, KnownFrame(v))
	}
	for _, v := range []byte{0, 16, 255} {
		require.False(t, KnownFrame(v))
		require.Equal(t, "unknown", FrameName(v))
	}
	require.Equal(t, []byte{1, 2, 3, 4, 5}, []byte{MsgInitiation, MsgResponse, MsgCookieReply, MsgTransport, MsgReset})
}

// TestSegmentView checks each accessor against kcp-go's header layout,
// written out by hand.
func TestSegmentView(t *testing.T) {
	b := []byte{
		0x01, 0x02, 0x03, 0x04, // conv
		CmdPush, 7, // cmd, frg
		0x10, 0x20, // wnd
		0x11, 0x12, 0x13, 0x14, // ts
		0x21, 0x22, 0x23, 0x24, // sn
		0x31, 0x32, 0x33, 0x34, // una
		3, 0, 0, 0, // len
		'a', 'b', 'c', 'd', // data, and one byte of the next segment
	}
	s, rest, ok := NextSegment(b)
	require.True(t, ok)
	require.Equal(t, []byte("d"), rest)
	require.Equal(t, uint32(0x04030201), s.Conv())
	require.Equal(t, CmdPush, s.Cmd())
	require.Equal(t, byte(7), s.Frg())
	require.Equal(t, uint16(0x2010), s.Wnd())
	require.Equal(t, uint32(0x14131211), s.Ts())
	require.Equal(t, uint32(0x24232221), s.Sn())
	require.Equal(t, uint32(0x34333231), s.Una())
	require.Equal(t, uint32(3), s.Len())
	require.Equal(t, []byte("abc"), s.Data())
	require.Equal(t, SegmentHeaderSize+3, SegmentSize(b))

	var h [SegmentHeaderSize]byte
	re := Segment(h[:])
	re.SetConv(s.Conv())
	re.SetCmd(s.Cmd())
	re.SetFrg(s.Frg())
	re.SetWnd(s.Wnd())
	re.SetTs(s.Ts())
	re.SetSn(s.Sn())
	re.SetUna(s.Una())
	re.SetLen(s.Len())
	require.Equal(t, b[:SegmentHeaderSize], h[:])

	_, _, ok = NextSegment(b[:SegmentHeaderSize+2]) // data cut short
	require.False(t, ok)
	_, _, ok = NextSegment(b[:SegmentHeaderSize-1])
	require.False(t, ok)
	require.Equal(t, SegmentHeaderSize+2, SegmentSize(b[:SegmentHeaderSize+2]))
	require.Equal(t, 5, SegmentSize(b[:5]))
}

// TestFixedBodiesExactLength: every fixed-size body decodes from exactly
// its size, round-trips, and is refused one byte short or long.
func TestFixedBodiesExactLength(t *testing.T) {
	type codec struct {
		size  int
		put   func([]byte)
		parse func([]byte) bool
	}
	for name, c := range map[string]codec{
		"ping": {PingSize, func(b []byte) { PutPing(b, Ping{1, 2, 3}) },
			func(b []byte) bool { p, ok := ParsePing(b); return ok && p == Ping{1, 2, 3} }},
		"pong": {PongSize, func(b []byte) { PutPong(b, Pong{4, 5}) },
			func(b []byte) bool { p, ok := ParsePong(b); return ok && p == Pong{4, 5} }},
		"loss": {LossSize, func(b []byte) { PutLoss(b, Loss{6, 7}) },
			func(b []byte) bool { l, ok := ParseLoss(b); return ok && l == Loss{6, 7} }},
		"rekey": {RekeySize, func(b []byte) { PutRekey(b, Rekey{RekeyAck, 8, [32]byte{9}}) },
			func(b []byte) bool { r, ok := ParseRekey(b); return ok && r == Rekey{RekeyAck, 8, [32]byte{9}} }},
		"mtu-ack": {MTUAckSize, func(b []byte) { PutMTUAck(b, MTUAck{10, 1400}) },
			func(b []byte) bool { a, ok := ParseMTUAck(b); return ok && a == MTUAck{10, 1400} }},
	} {
		b := make([]byte, c.size+1)
		c.put(b[:c.size])
		require.True(t, c.parse(b[:c.size]), name)
		require.False(t, c.parse(b[:c.size-1]), name+" short")
		require.False(t, c.parse(b), name+" long")
	}
	var r [RekeySize]byte
	r[0] = RekeyAck + 1
	_, ok := ParseRekey(r[:])
	require.False(t, ok, "unknown rekey kind")
}

func TestCloseBody(t *testing.T) {
	b := AppendCloseHeader(nil, 0x1234, 2)
	b = AppendCloseCount(b, 5)
	b = AppendCloseCount(b, 6)
	b = append(b, "bye"...)
	c, ok := ParseClose(b, 32, 256)
	require.True(t, ok)
	require.Equal(t, uint16(0x1234), c.Code)
	require.Equal(t, 2, c.Lanes())
	require.Equal(t, []uint32{5, 6}, []uint32{c.Count(0), c.Count(1)})
	require.Equal(t, "bye", c.Reason)

	c, ok = ParseClose([]byte{9}, 32, 256)
	require.True(t, ok, "legacy layout")
	require.Equal(t, Close{Code: 9}, c)

	for name, bad := range map[string][]byte{
		"empty":        {},
		"two bytes":    {1, 2},
		"no lanes":     AppendCloseHeader(nil, 1, 0),
		"counts short": AppendCloseCount(AppendCloseHeader(nil, 1, 2), 1),
		"many lanes":   AppendCloseCount(AppendCloseHeader(nil, 1, 1), 1),
	} {
		maxLanes := 32
		if name == "many lanes" {
			maxLanes = 0
		}
		_, ok := ParseClose(bad, maxLanes, 256)
		require.False(t, ok, name)
	}
	_, ok = ParseClose(append(AppendCloseCount(AppendCloseHeader(nil, 1, 1), 1), "toolong"...), 32, 6)
	require.False(t, ok, "reason too long")
}

func TestVariableBodies(t *testing.T) {
	var h [LatestSize]byte
	PutLatest(h[:], 3, 0x01020304)
	ch, seq, msg, ok := ParseLatest(append(h[:], 'x'))
	require.True(t, ok)
	require.Equal(t, uint8(3), ch)
	require.Equal(t, uint32(0x01020304), seq)
	require.Equal(t, []byte("x"), msg)
	_, _, _, ok = ParseLatest(h[:])
	require.False(t, ok, "empty message")

	var p [MTUProbeIDSize + 3]byte
	PutMTUProbe(p[:], 77)
	id, ok := ParseMTUProbe(p[:])
	require.True(t, ok)
	require.Equal(t, uint32(77), id)
	_, ok = ParseMTUProbe(p[:MTUProbeIDSize-1])
	require.False(t, ok)

	var fh [FragmentHeaderSize]byte
	PutFragment(fh[:], Fragment{ID: 1, Offset: 2, Total: 4})
	f, data, ok := ParseFragment(append(fh[:], 'a', 'b'), 100)
	require.True(t, ok)
	require.Equal(t, Fragment{1, 2, 4}, f)
	require.Equal(t, []byte("ab"), data)
	_, _, ok = ParseFragment(append(fh[:], 'a', 'b', 'c'), 100)
	require.False(t, ok, "past the total")
	_, _, ok = ParseFragment(append(fh[:], 'a'), 3)
	require.False(t, ok, "total above the bound")
	_, _, ok = ParseFragment(fh[:], 100)
	require.False(t, ok, "no data")
}

// TestRekeyFrameCodec checks the rekey frame body's exact size and kinds.
func TestRekeyFrameCodec(t *testing.T) {
	f := Rekey{Kind: RekeyAck, Epoch: 0x01020304}
	for i := range f.Pub {
		f.Pub[i] = byte(i)
	}
	var b [RekeySize]byte
	PutRekey(b[:], f)
	require.Equal(t, []byte{RekeyAck, 4, 3, 2, 1, 0, 1, 2}, b[:8], "layout")
	got, ok := ParseRekey(b[:])
	require.True(t, ok)
	require.Equal(t, f, got)
	_, ok = ParseRekey(b[:RekeySize-1])
	require.False(t, ok, "short body")
	_, ok = ParseRekey(append(b[:], 0))
	require.False(t, ok, "long body")
	b[0] = 2
	_, ok = ParseRekey(b[:])
	require.False(t, ok, "unknown kind")
}

func TestFECParams(t *testing.T) {
	var b [FECParamsSize]byte
	p := FECParams{Data: 10, Parity: 3, MaxParity: 6, Adaptive: true}
	PutFECParams(b[:], p)
	require.Equal(t, []byte{10, 3, 1, 6}, b[:])
	got, ok := ParseFECParams(b[:])
	require.True(t, ok)
	require.Equal(t, p, got)
	b[2] = 2
	_, ok = ParseFECParams(b[:])
	require.False(t, ok, "reserved flag bit")
	_, ok = ParseFECParams(b[:3])
	require.False(t, ok, "short")
}

func TestReset(t *testing.T) {
	var b [ResetSize]byte
	tok := [ResetTokenSize]byte{1, 2, 3}
	PutReset(&b, 0x0a0b0c0d, &tok)
	require.Equal(t, []byte{MsgReset, 0, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a, 1, 2, 3}, b[:11])
	id, got, ok := ParseReset(b[:])
	require.True(t, ok)
	require.Equal(t, uint32(0x0a0b0c0d), id)
	require.Equal(t, tok, got)
	for i := 1; i < 4; i++ {
		bad := b
		bad[i] = 1
		_, _, ok := ParseReset(bad[:])
		require.False(t, ok, "reserved byte %d", i)
	}
	_, _, ok = ParseReset(b[:ResetSize-1])
	require.False(t, ok)
	_, _, ok = ParseReset(append(b[:], 0))
	require.False(t, ok)
}

// TestHelloAndAnswer: the handshake payloads' layouts (docs/protocol.md
// sections 3.1 and 3.2) and their views.
func TestHelloAndAnswer(t *testing.T) {
	b := make([]byte, InitiationPayloadSize+2+3)
	h := Hello{Timestamp: 0x0102030405060708, FEC: FECParams{Data: 10, Parity: 3, MaxParity: 6}, MTU: 1400, Lanes: 2, MinMTU: 1200}
	PutHello(b, h, true, []byte("abc"))
	require.Equal(t, []byte{8, 7, 6, 5, 4, 3, 2, 1, 10, 3, 0, 6, 0x78, 0x05, 2, 0xb0, 0x04, 0, 0, 0, 0, 0, 0, 0, 3, 0, 'a', 'b', 'c'}, b)
	p := InitiationPayload(b)
	require.Equal(t, h.Timestamp, p.Timestamp())
	fec, ok := ParseFECParams(p.FEC())
	require.True(t, ok)
	require.Equal(t, h.FEC, fec)
	require.Equal(t, []any{uint16(1400), uint8(2), uint16(1200)}, []any{p.MTU(), p.Lanes(), p.MinMTU()})
	data, ok := p.ConnectData(3)
	require.True(t, ok)
	require.Equal(t, []byte("abc"), data)
	_, ok = p.ConnectData(2)
	require.False(t, ok, "over the bound")
	_, ok = InitiationPayload(b[:len(b)-1]).ConnectData(3)
	require.False(t, ok, "past the payload")
	_, ok = InitiationPayload(b[:InitiationPayloadSize]).ConnectData(3)
	require.False(t, ok, "no length")

	tok := [ResetTokenSize]byte{0xee}
	r := make([]byte, ResponsePayloadSize)
	PutAnswer(r, Answer{Status: 0, MTU: 1300, Lanes: 4, SessionID: 0x11223344, FEC: FECParams{Data: 1, Parity: 1, MaxParity: 1}, Token: &tok}, true, false, false, nil)
	rp := ResponsePayload(r)
	require.Equal(t, []any{byte(0), uint16(1300), uint8(4), uint32(0x11223344), tok}, []any{rp.Status(), rp.MTU(), rp.Lanes(), rp.SessionID(), rp.Token()})
	require.Equal(t, []byte{1, 1, 0, 1}, rp.FEC())

	r = make([]byte, ResponsePayloadSize)
	PutAnswer(r, Answer{Status: 6, Code: 0x0102}, false, true, false, []byte("no room here, and a reason longer than fits"))
	rp = ResponsePayload(r)
	require.Equal(t, uint16(0x0102), rp.RejectCode())
	reason, ok := rp.PlainReason()
	require.True(t, ok)
	require.Equal(t, "no room here, and a reason"[:PlainReasonMax], reason)
	r[6] = PlainReasonMax + 1
	_, ok = ResponsePayload(r).PlainReason()
	require.False(t, ok)

	r = make([]byte, ResponsePayloadSize+2+2)
	PutAnswer(r, Answer{Status: 6}, false, true, true, []byte("no"))
	ext, ok := ResponsePayload(r).Ext()
	require.True(t, ok)
	require.Equal(t, []byte("no"), ext)
	require.Equal(t, byte(0), r[6], "no plain reason in the extended form")
	_, ok = ResponsePayload(r[:len(r)-1]).Ext()
	require.False(t, ok)
}

// TestSuiteFields pins the cipher suite negotiation's bytes: the offer
// and AES flag at initiation payload bytes 17 and 18, the choice and flag
// at response payload bytes 28 and 29 (not in a rejection, whose reason
// has those bytes).
func TestSuiteFields(t *testing.T) {
	require.Equal(t, []byte{0, 0x02, 0x04, 0x08, 0x80, 0}, []byte{SuiteBit(0), SuiteBit(1), SuiteBit(2), SuiteBit(3), SuiteBit(7), SuiteBit(8)})
	b := make([]byte, InitiationPayloadSize)
	PutHello(b, Hello{Suites: 0x0e, SuiteFlags: SuiteAESHardware}, false, nil)
	require.Equal(t, []byte{0x0e, SuiteAESHardware, 0, 0, 0, 0, 0}, b[17:24])
	p := InitiationPayload(b)
	require.Equal(t, []byte{0x0e, SuiteAESHardware}, []byte{p.Suites(), p.SuiteFlags()})

	tok := [ResetTokenSize]byte{0xee}
	r := make([]byte, ResponsePayloadSize)
	PutAnswer(r, Answer{Status: 0, SessionID: 1, Token: &tok, Suite: 3, SuiteFlags: SuiteAESHardware}, true, false, false, nil)
	require.Equal(t, []byte{3, SuiteAESHardware, 0, 0}, r[28:32])
	rp := ResponsePayload(r)
	require.Equal(t, []byte{3, SuiteAESHardware}, []byte{rp.Suite(), rp.SuiteFlags()})

	r = make([]byte, ResponsePayloadSize)
	PutAnswer(r, Answer{Status: 5, Suite: 2}, false, false, false, nil)
	require.Equal(t, byte(2), ResponsePayload(r).Suite(), "a refusal names the server's cipher")

	r = make([]byte, ResponsePayloadSize)
	reason := []byte("0123456789012345678901234")
	PutAnswer(r, Answer{Status: 6, Suite: 3}, false, true, false, reason)
	require.Equal(t, reason, r[7:32], "a rejection's reason keeps bytes 28..32")
}

func TestHandshakeHeaders(t *testing.T) {
	b := make([]byte, InitiationHeaderSize+EphemeralSize)
	b[InitiationHeaderSize] = 0xaa
	PutInitiationHeader(b, 2, FlagIK|FlagPSK, 0x01020304)
	require.Equal(t, []byte{MsgInitiation, ProtocolVersion, 2, 3, 4, 3, 2, 1, 0xaa}, b[:9])
	h := InitiationHeader(b)
	require.Equal(t, []any{byte(2), FlagIK | FlagPSK, uint32(0x01020304)}, []any{h.Cipher(), h.Flags(), h.SenderIndex()})
	require.Equal(t, byte(0xaa), h.Ephemeral()[0])

	r := make([]byte, ResponseHeaderSize)
	PutResponseHeader(r, 0x0a0b0c0d, 0x01020304)
	require.Equal(t, []byte{MsgResponse, 0, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a, 4, 3, 2, 1}, r)
	rh := ResponseHeader(r)
	require.True(t, rh.Valid())
	require.Equal(t, uint32(0x0a0b0c0d), rh.SessionID())
	require.Equal(t, uint32(0x01020304), rh.ReceiverIndex())
	for i := 1; i < 4; i++ {
		bad := append([]byte(nil), r...)
		bad[i] = 1
		require.False(t, ResponseHeader(bad).Valid(), "reserved byte %d", i)
	}
	require.False(t, ResponseHeader(r[:ResponseHeaderSize-1]).Valid())
}

func TestLaneMessage(t *testing.T) {
	for _, tt := range []struct {
		kind     byte
		deadline uint64
	}{{LaneMsgPlain, 0}, {LaneMsgDeadline, 0}, {LaneMsgDeadline, 1 << 40}} {
		b := append(AppendLaneHeader(nil, tt.kind, tt.deadline, 3), "abc"...)
		m, err := ParseLaneMessage(b)
		require.NoError(t, err)
		require.Equal(t, LaneMessage{Kind: tt.kind, Deadline: tt.deadline, Payload: []byte("abc")}, m)
		if tt.kind == LaneMsgDeadline {
			m, err = ParseLaneMessage(b[:len(b)-1])
			require.NoError(t, err)
			require.True(t, m.Short, "cut by skip markers")
		}
	}
	require.Equal(t, []byte{LaneMsgDeadline, 0x80, 0x01, 3}, AppendLaneHeader(nil, LaneMsgDeadline, 128, 3), "uvarints")
	m, err := ParseLaneMessage([]byte{LaneMsgSkip})
	require.NoError(t, err)
	require.Equal(t, LaneMsgSkip, m.Kind)
	_, err = ParseLaneMessage(nil)
	require.ErrorIs(t, err, ErrLaneEmpty)
	_, err = ParseLaneMessage([]byte{LaneMsgDeadline, 0x80})
	require.ErrorIs(t, err, ErrLaneHeader)
	_, err = ParseLaneMessage([]byte{3, 1})
	require.ErrorIs(t, err, ErrLaneKind)
}
