package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTransportHeader: ParseTransportHeader never panics, accepts only
// what PutTransportHeader can produce, and round-trips.
func FuzzTransportHeader(f *testing.F) {
	for _, phase := range []uint8{0, 1} {
		b := make([]byte, MinTransportSize+8)
		PutTransportHeader(b, 0xdeadbeef, 1<<40+5, phase)
		f.Add(b)
	}
	f.Add([]byte{MsgTransport, 2, 0, 0, 0, 0, 0, 0, 0x80})
	f.Add(make([]byte, MinTransportSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseTransportHeader(b)
		if !ok {
			return
		}
		require.GreaterOrEqual(t, len(b), MinTransportSize)
		re := make([]byte, TransportHeaderSize)
		PutTransportHeader(re, h.Receiver(), uint64(h.CounterLow()), h.KeyPhase())
		require.Equal(t, b[:TransportHeaderSize], re, "decode(encode(x)) != x")
	})
}

// FuzzRekeyFrame: the rekey body decoder never panics and round-trips.
func FuzzRekeyFrame(f *testing.F) {
	for _, kind := range []byte{RekeyInit, RekeyAck} {
		var b [RekeySize]byte
		PutRekey(b[:], Rekey{Kind: kind, Epoch: 1, Pub: [32]byte{9}})
		f.Add(b[:])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, b, RekeySize, ParseRekey, PutRekey) })
}

// FuzzSegments: walking a frame body with NextSegment never panics, cuts
// it into segments that exactly tile what it accepted, and SegmentSize
// agrees with it.
func FuzzSegments(f *testing.F) {
	seg := make([]byte, SegmentHeaderSize+2)
	Segment(seg).SetLen(2)
	f.Add(append(seg, seg...))
	f.Add(seg[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		used := 0
		for p := b; len(p) > 0; {
			s, rest, ok := NextSegment(p)
			if !ok {
				require.Equal(t, len(p), SegmentSize(p), "a bad segment runs to the end")
				break
			}
			require.Equal(t, SegmentHeaderSize+int(s.Len()), len(s))
			require.Equal(t, len(s), SegmentSize(p))
			used += len(s)
			p = rest
		}
		require.LessOrEqual(t, used, len(b))
	})
}

// roundTrip checks that whatever a fixed-size decoder accepts re-encodes
// to the same bytes.
func roundTrip[T any](t *testing.T, b []byte, size int, parse func([]byte) (T, bool), put func([]byte, T)) {
	t.Helper()
	v, ok := parse(b)
	if !ok {
		return
	}
	re := make([]byte, size)
	put(re, v)
	require.Equal(t, b, re)
}

// FuzzFrameBodies: every body decoder (and the handshake's FEC
// parameters and the reset) never panics, and each accepted body
// re-encodes to the same bytes.
func FuzzFrameBodies(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, PingSize))
	f.Add(AppendCloseCount(AppendCloseHeader(nil, 1, 1), 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, b, PingSize, ParsePing, PutPing)
		roundTrip(t, b, PongSize, ParsePong, PutPong)
		roundTrip(t, b, LossSize, ParseLoss, PutLoss)
		roundTrip(t, b, MTUAckSize, ParseMTUAck, PutMTUAck)
		roundTrip(t, b, FECParamsSize, ParseFECParams, PutFECParams)
		if c, ok := ParseClose(b, 32, 256); ok && c.Counts != nil {
			re := AppendCloseHeader(nil, c.Code, c.Lanes())
			for i := range c.Lanes() {
				re = AppendCloseCount(re, c.Count(i))
			}
			require.Equal(t, b, append(re, c.Reason...))
		}
		if ch, seq, msg, ok := ParseLatest(b); ok {
			re := make([]byte, LatestSize)
			PutLatest(re, ch, seq)
			require.Equal(t, b, append(re, msg...))
		}
		if id, tok, ok := ParseReset(b); ok {
			var re [ResetSize]byte
			PutReset(&re, id, &tok)
			require.Equal(t, b, re[:])
		}
		if len(b) >= InitiationPayloadSize {
			p := InitiationPayload(b)
			if d, ok := p.ConnectData(1 << 16); ok {
				require.LessOrEqual(t, 26+len(d), len(b))
			}
			_, _, _, _ = p.Timestamp(), p.MTU(), p.Lanes(), p.MinMTU()
		}
		if len(b) >= ResponsePayloadSize {
			p := ResponsePayload(b)
			if r, ok := p.PlainReason(); ok {
				require.LessOrEqual(t, len(r), PlainReasonMax)
			}
			if ext, ok := p.Ext(); ok {
				require.Equal(t, len(b)-ResponsePayloadSize-2, len(ext))
			}
		}
		if m, err := ParseLaneMessage(b); err == nil && !m.Short && m.Kind != LaneMsgSkip {
			re := AppendLaneHeader(nil, m.Kind, m.Deadline, uint32(len(m.Payload)))
			if len(re) == len(b)-len(m.Payload) { // a non-minimal uvarint decodes too
				require.Equal(t, b, append(re, m.Payload...))
			}
		}
		if fr, data, ok := ParseFragment(b, 1<<16-1); ok {
			require.LessOrEqual(t, int(fr.Offset)+len(data), int(fr.Total))
			re := make([]byte, FragmentHeaderSize)
			PutFragment(re, fr)
			require.Equal(t, b, append(re, data...))
		}
	})
}

// FuzzReset: ParseReset accepts only what PutReset writes, and any session
// ID and token round-trip.
func FuzzReset(f *testing.F) {
	var r [ResetSize]byte
	PutReset(&r, 77, &[ResetTokenSize]byte{1, 2, 3})
	f.Add(r[:], uint32(77), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte, id uint32, token []byte) {
		if gotID, tok, ok := ParseReset(data); ok {
			var again [ResetSize]byte
			PutReset(&again, gotID, &tok)
			require.Equal(t, data, again[:])
		}
		var tok [ResetTokenSize]byte
		copy(tok[:], token)
		PutReset(&r, id, &tok)
		gotID, gotTok, ok := ParseReset(r[:])
		require.True(t, ok)
		require.Equal(t, id, gotID)
		require.Equal(t, tok, gotTok)
	})
}
