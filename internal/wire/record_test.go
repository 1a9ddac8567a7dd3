package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// seg builds one kcp-go segment.
func testSeg(conv uint32, cmd, frg byte, wnd uint16, ts, sn, una uint32, data []byte) []byte {
	b := make([]byte, SegmentHeaderSize+len(data))
	s := Segment(b)
	s.SetConv(conv)
	s.SetCmd(cmd)
	s.SetFrg(frg)
	s.SetWnd(wnd)
	s.SetTs(ts)
	s.SetSn(sn)
	s.SetUna(una)
	s.SetLen(uint32(len(data)))
	copy(b[SegmentHeaderSize:], data)
	return b
}

// compactCopy compacts a copy of segs (Compact works in place) and checks
// CompactSize agrees.
func compactCopy(t testing.TB, segs []byte) []byte {
	t.Helper()
	n, ok := CompactSize(segs)
	require.True(t, ok)
	frame, ok := Compact(bytes.Clone(segs))
	require.True(t, ok)
	require.Len(t, frame, n)
	return bytes.Clone(frame)
}

// expandBoth expands frame with Expand and with ExpandInPlace (given
// room), checks they agree and returns the segments.
func expandBoth(t testing.TB, frame []byte, ref Refs) ([]byte, bool) {
	t.Helper()
	segs, ok := Expand(nil, frame, ref)
	buf := make([]byte, 24+len(frame))
	off := len(buf) - len(frame)
	copy(buf[off:], frame)
	in, ok2, fit := ExpandInPlace(buf, off, ref)
	if !fit {
		// Several records, or a malformed one: refused, buf untouched.
		require.True(t, bytes.Equal(frame, buf[off:]), "ExpandInPlace wrote though it refused")
		return segs, ok
	}
	require.True(t, ok && ok2, "ExpandInPlace took a frame Expand refuses")
	require.True(t, bytes.Equal(segs, in), "Expand and ExpandInPlace differ")
	// Too little room: refused, buffer untouched.
	if grow := len(segs) - len(frame); grow > 0 {
		small := append(make([]byte, grow-1), frame...)
		_, _, fit := ExpandInPlace(small, grow-1, ref)
		require.False(t, fit)
		require.True(t, bytes.Equal(frame, small[grow-1:]))
	}
	return segs, ok
}

// TestRecordRoundTrip: every cmd with every flag combination the encoder
// can choose, alone and behind another record, survives Compact then
// Expand, and costs the header the format says. WASK and WINS records
// always carry U.
func TestRecordRoundTrip(t *testing.T) {
	const conv = 0xa1b2c3d4
	ref := Refs{Conv: conv, RcvNxt: 1000, SndUna: 5000, Now: 0x1234_5678}
	for _, cmd := range []byte{CmdPush, CmdAck, CmdWask, CmdWins} {
		for _, withU := range []bool{false, true} {
			for _, withL := range []bool{false, true} {
				for _, withF := range []bool{false, true} {
					if cmd != CmdPush && withF {
						continue // only data has a fragment number
					}
					name := fmt.Sprintf("cmd%d/U=%v/L=%v/F=%v", cmd, withU, withL, withF)
					t.Run(name, func(t *testing.T) {
						var data []byte
						if cmd == CmdPush {
							data = []byte("payload-bytes")
						}
						var frg byte
						if withF {
							frg = 3
						}
						// A PUSH's ts is expanded as its 16 bits, an ACK's
						// against the receiver's clock (here 30 ms ago).
						sn, ts := ref.RcvNxt+7, uint32(0xbeef)
						if cmd == CmdAck {
							sn, ts = ref.SndUna+9, ref.Now-30
						}
						// The record under test follows a lead record; U is
						// needed only if it changes una or wnd; L only if a
						// record follows it.
						lead := testSeg(conv, CmdAck, 0, 64, ref.Now-11, ref.SndUna+1, ref.SndUna+2, nil)
						una, wnd := ref.SndUna+2, uint16(64)
						if withU {
							una, wnd = ref.SndUna+3, 65
						}
						rec := testSeg(conv, cmd, frg, wnd, ts, sn, una, data)
						segs := append(bytes.Clone(lead), rec...)
						if withL {
							segs = append(segs, testSeg(conv, CmdWins, 0, wnd, 12, ref.RcvNxt, una, nil)...)
						}
						frame := compactCopy(t, segs)
						hasU := withU || cmd == CmdWask || cmd == CmdWins
						want := 1 + 2 + 2 + len(data)
						if hasU {
							want += 4
						}
						if withL {
							want += 2
						}
						if withF {
							want++
						}
						leadSize := 1 + 4 + 2 + 2 + 2
						require.Equal(t, byte(cmd-CmdPush)|flagsOf(hasU, withL, withF), frame[leadSize])
						if !withL {
							require.Len(t, frame, leadSize+want)
						}
						got, ok := expandBoth(t, frame, ref)
						require.True(t, ok)
						require.Equal(t, segs, got)
					})
				}
			}
		}
	}
}

// TestRecordFirstWithoutU: with a lane's Sticky, a frame's first record
// leaves out una and wnd exactly when the peer holds them (the last
// record the lane sent had them) and nothing asks for them: a change, a
// renewal, an ACK, WASK or WINS record, no frame sent yet. A frame
// without U expands against the una and wnd the receiver holds.
func TestRecordFirstWithoutU(t *testing.T) {
	const conv = 7
	data := make([]byte, 1200)
	push := func(una uint32, wnd uint16) []byte { return testSeg(conv, CmdPush, 2, wnd, 0x4321, 90, una, data) }
	ack := testSeg(conv, CmdAck, 0, 300, 0x1_0000, 40, 500, nil)
	for _, tc := range []struct {
		name  string
		st    Sticky
		segs  []byte
		withU bool
	}{
		{"unchanged", Sticky{Una: 500, Wnd: 300, Valid: true}, push(500, 300), false},
		{"unchanged-two-records", Sticky{Una: 500, Wnd: 300, Valid: true}, append(push(500, 300), push(500, 300)...), false},
		{"nothing-sent-yet", Sticky{Una: 500, Wnd: 300}, push(500, 300), true},
		{"renew", Sticky{Una: 500, Wnd: 300, Valid: true, Renew: true}, push(500, 300), true},
		{"una-changed", Sticky{Una: 499, Wnd: 300, Valid: true}, push(500, 300), true},
		{"una-changed-2^16", Sticky{Una: 500 + 1<<16, Wnd: 300, Valid: true}, push(500, 300), true},
		{"wnd-changed", Sticky{Una: 500, Wnd: 301, Valid: true}, push(500, 300), true},
		{"with-ack", Sticky{Una: 500, Wnd: 300, Valid: true}, append(push(500, 300), ack...), true},
		{"ack-first", Sticky{Una: 500, Wnd: 300, Valid: true}, append(bytes.Clone(ack), push(500, 300)...), true},
		{"wins", Sticky{Una: 500, Wnd: 300, Valid: true}, testSeg(conv, CmdWins, 0, 300, 5, 90, 500, nil), true},
		{"wask", Sticky{Una: 500, Wnd: 300, Valid: true}, testSeg(conv, CmdWask, 0, 300, 5, 90, 500, nil), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			in := bytes.Clone(tc.segs)
			frame, size, ok := CompactFit(in, len(in), &st)
			require.True(t, ok)
			require.Len(t, frame, size)
			require.Equal(t, tc.withU, frame[0]&RecordFlagU != 0)
			worst, _ := CompactSize(tc.segs)
			if tc.withU {
				require.Equal(t, worst, size)
			} else {
				require.Equal(t, worst-4, size, "4 bytes saved")
			}
			last, _ := lastSegment(tc.segs)
			require.Equal(t, Sticky{Una: last.Una(), Wnd: last.Wnd(), Valid: true, Renew: tc.st.Renew}, st, "the sticky holds the last record's")
			// The receiver holds what the sticky said.
			ref := Refs{Conv: conv, RcvNxt: 90, SndUna: tc.st.Una, Wnd: tc.st.Wnd, Now: 0x1_0010}
			if tc.withU {
				ref.SndUna, ref.Wnd = 480, 7 // stale: the frame says
			}
			got, ok := expandBoth(t, bytes.Clone(frame), ref)
			require.True(t, ok)
			require.Equal(t, tc.segs, got)
		})
	}
	// Without a Sticky (Compact) the first record always carries U.
	frame := compactCopy(t, push(500, 300))
	require.NotZero(t, frame[0]&RecordFlagU)
}

// lastSegment returns the last of segs.
func lastSegment(segs []byte) (Segment, bool) {
	var last Segment
	for p := segs; len(p) > 0; {
		s, rest, ok := NextSegment(p)
		if !ok {
			return nil, false
		}
		last, p = s, rest
	}
	return last, last != nil
}

// TestRecordTS: ts travels as 16 bits. A PUSH's expands to the 16-bit
// value (the receiver only echoes it), across the wrap of the sender's
// clock; an ACK's to the latest value not after the receiver's clock plus
// ackTSSlack: exact across the 2^16 and 2^32 wraps for round trips up to
// 2^16 − ackTSSlack ms, and for stamps up to ackTSSlack ahead.
func TestRecordTS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		now, ts uint32
		exact   bool
	}{
		{"equal", 1000, 1000, true},
		{"rtt-1ms", 1000, 999, true},
		{"low16-wrap", 0x2_0003, 0x1_fff0, true},
		{"low16-wrap-exact-boundary", 0x2_0000, 0x1_ffff, true},
		{"u32-wrap", 5, 0xffff_fff0, true},
		{"rtt-60s", 0x7_0000, 0x7_0000 - 60_000, true},
		{"rtt-longest", 0x7_0000, 0x7_0000 - (1<<16 - ackTSSlack - 1), true},
		{"rtt-too-long", 0x7_0000, 0x7_0000 - (1<<16 - ackTSSlack), false},
		{"ahead-1ms", 0x1_fff0, 0x1_fff1, true},
		{"ahead-across-wrap", 0x1_fff0, 0x2_0002, true},
		{"ahead-slack", 0x1_fff0, 0x1_fff0 + ackTSSlack, true},
		{"ahead-beyond-slack", 0x1_fff0, 0x1_fff0 + ackTSSlack + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ackTS(tc.now, uint16(tc.ts))
			require.Equal(t, uint16(tc.ts), uint16(got))
			require.Equal(t, tc.exact, got == tc.ts, "expanded %#x", got)
			// Through a frame: the ACK expands against the clock, the
			// PUSH behind it to its 16 bits.
			ref := Refs{Conv: 3, RcvNxt: 77, SndUna: 20, Now: tc.now}
			segs := append(testSeg(3, CmdAck, 0, 9, tc.ts, 25, 20, nil),
				testSeg(3, CmdPush, 0, 9, tc.ts, 77, 20, []byte("d"))...)
			got2, ok := expandBoth(t, compactCopy(t, segs), ref)
			require.True(t, ok)
			require.Equal(t, got, Segment(got2).Ts())
			push, _ := lastSegment(got2)
			require.Equal(t, uint32(uint16(tc.ts)), push.Ts())
		})
	}
}

func flagsOf(u, l, f bool) byte {
	var b byte
	if u {
		b |= RecordFlagU
	}
	if l {
		b |= RecordFlagL
	}
	if f {
		b |= RecordFlagF
	}
	return b
}

// TestRecordSizes: the sizes the sizing relies on (docs/protocol.md
// section 3.5): a full data segment with frg costs 10 bytes of header
// with U and 6 without, a lone ACK 9, an ACK behind another 7 (5 as the
// last), and a frame is at least RecordSaving shorter than kcp-go's.
func TestRecordSizes(t *testing.T) {
	data := make([]byte, 1200)
	one := testSeg(1, CmdPush, 4, 128, 1, 2, 3, data)
	n, ok := CompactSize(one)
	require.True(t, ok)
	require.Equal(t, RecordLastMaxHeader+len(data), n)
	require.Equal(t, 10, RecordLastMaxHeader)
	st := Sticky{Una: 3, Wnd: 128, Valid: true}
	_, n, _ = CompactFit(bytes.Clone(one), len(one), &st)
	require.Equal(t, 6+len(data), n, "a full data record without U")
	ack := testSeg(1, CmdAck, 0, 128, 1, 2, 3, nil)
	n, _ = CompactSize(ack)
	require.Equal(t, 9, n)
	n, _ = CompactSize(append(bytes.Clone(ack), ack...))
	require.Equal(t, 11+5, n)
	n, _ = CompactSize(append(append(bytes.Clone(ack), ack...), ack...))
	require.Equal(t, 11+7+5, n)
	mixed := append(append(bytes.Clone(ack), testSeg(1, CmdPush, 255, 7, 1, 2, 9, data[:100])...), one...)
	n, _ = CompactSize(mixed)
	require.LessOrEqual(t, n, len(mixed)-RecordSaving)
	require.Equal(t, RecordMaxHeader, 1+4+2+2+1+2)
}

// TestRecordWrap: sn and una expand across the 2^16 wrap of their low
// bits and the 2^32 wrap of the full value, both ways from the reference.
func TestRecordWrap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ref, val uint32
	}{
		{"equal", 100, 100},
		{"low16-wrap-ahead", 0xfff0, 0x1_0005},
		{"low16-wrap-behind", 0x1_0005, 0xfff0},
		{"low16-wrap-2", 0x3_fffe, 0x4_0001},
		{"u32-wrap-ahead", 0xffff_fff0, 0x10},
		{"u32-wrap-behind", 0x10, 0xffff_fff0},
		{"far-ahead", 0x1234_5678, 0x1234_5678 + 1<<15 - 1},
		{"far-behind", 0x1234_5678, 0x1234_5678 - 1<<15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.val, nearest(tc.ref, uint16(tc.val)))
			ref := Refs{Conv: 9, RcvNxt: tc.ref, SndUna: tc.ref, Now: 2}
			segs := append(testSeg(9, CmdPush, 0, 1, 2, tc.val, tc.val, []byte("x")),
				testSeg(9, CmdAck, 0, 1, 2, tc.val, tc.val, nil)...)
			got, ok := expandBoth(t, compactCopy(t, segs), ref)
			require.True(t, ok)
			require.Equal(t, segs, got)
		})
	}
}

// TestRecordMalformed: bad frames are refused without a panic; the
// records before the bad one still expand.
func TestRecordMalformed(t *testing.T) {
	good := compactCopy(t, testSeg(1, CmdAck, 0, 5, 6, 7, 8, nil)) // U, no L: last
	require.Len(t, good, 9)
	goodL := append([]byte{RecordFlagU | RecordFlagL | 1}, good[1:]...)
	goodL = append(goodL, 0, 0) // len 0
	for _, tc := range []struct {
		name  string
		frame []byte
		keep  int // segments expanded before the bad record
	}{
		{"empty", nil, 0},
		{"reserved-bit", append([]byte{good[0] | 0x20}, good[1:]...), 0},
		{"reserved-bit-7", append([]byte{good[0] | 0x80}, good[1:]...), 0},
		{"truncated-A-only", []byte{RecordFlagU}, 0},
		{"truncated-una", good[:3], 0},
		{"truncated-ts", good[:6], 0},
		{"truncated-sn", good[:8], 0},
		{"truncated-no-U", []byte{1, 1, 2, 3}, 0},
		{"truncated-frg", []byte{RecordFlagU | RecordFlagF, 1, 2, 3, 4, 5, 6, 7, 8}, 0},
		{"truncated-len", append(bytes.Clone(goodL[:len(goodL)-2]), 0), 0},
		{"len-beyond-frame", append(append([]byte{RecordFlagU | RecordFlagL}, good[1:9]...), 5, 0, 'a'), 0},
		{"ack-with-data", append(bytes.Clone(good), 'x'), 0},
		{"ack-with-len", append(append(bytes.Clone(goodL[:9]), 1, 0), 'x'), 0},
		{"wins-with-frg", append([]byte{RecordFlagU | RecordFlagF | 3}, append(bytes.Clone(good[1:9]), 2)...), 0},
		{"L-missing-non-last", append(bytes.Clone(good), good...), 0},
		{"bad-second-record", append(bytes.Clone(goodL), 0xff), 1},
		{"second-truncated", append(bytes.Clone(goodL), good[:5]...), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			segs, ok := expandBoth(t, tc.frame, Refs{})
			require.False(t, ok)
			require.Len(t, segs, tc.keep*SegmentHeaderSize)
		})
	}
}

// TestCompactRefuses: Compact refuses what records cannot carry.
func TestCompactRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		segs []byte
	}{
		{"empty", nil},
		{"truncated", testSeg(1, CmdPush, 0, 1, 1, 1, 1, []byte("ab"))[:25]},
		{"unknown-cmd", testSeg(1, 80, 0, 1, 1, 1, 1, nil)},
		{"ack-with-data", testSeg(1, CmdAck, 0, 1, 1, 1, 1, []byte("a"))},
		{"wins-with-frg", testSeg(1, CmdWins, 2, 1, 1, 1, 1, nil)},
		{"bad-second-segment", append(testSeg(1, CmdPush, 0, 1, 1, 1, 1, []byte("a")), testSeg(1, 85, 0, 1, 1, 1, 1, nil)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := CompactSize(tc.segs)
			require.False(t, ok)
			in := bytes.Clone(tc.segs)
			_, ok = Compact(in)
			require.False(t, ok)
			require.Equal(t, tc.segs, in)
		})
	}
}

// FuzzRecords: Expand never panics and agrees with ExpandInPlace; what it
// accepts compacts back to the same frame when the frame is canonical,
// and Compact∘Expand is the identity on kcp-go segments, with and without
// U on the first record (the receiver's held una and wnd as the sticky).
func FuzzRecords(f *testing.F) {
	data := []byte("hello")
	f.Add(compactCopy(f, testSeg(1, CmdPush, 2, 3, 4, 5, 6, data)), uint32(5), uint32(6), uint16(3), uint32(4))
	f.Add(compactCopy(f, append(testSeg(1, CmdAck, 0, 3, 4, 5, 6, nil), testSeg(1, CmdPush, 0, 3, 4, 5, 6, data)...)), uint32(0), uint32(0), uint16(0), uint32(0))
	f.Add([]byte{RecordFlagU | RecordFlagL}, uint32(1), uint32(0xffff_ffff), uint16(9), uint32(0xffff_fff0))
	f.Add([]byte{RecordFlagF, 1, 2, 3, 4, 5, 'x'}, uint32(0x1_0000), uint32(3), uint16(256), uint32(0x1_0005))
	f.Add([]byte{1, 0xf0, 0xff, 3, 4}, uint32(0x1_0000), uint32(3), uint16(256), uint32(0x2_0005))
	f.Fuzz(func(t *testing.T, frame []byte, rcvNxt, sndUna uint32, wnd uint16, now uint32) {
		ref := Refs{Conv: 77, RcvNxt: rcvNxt, SndUna: sndUna, Wnd: wnd, Now: now}
		segs, ok := expandBoth(t, frame, ref)
		// Whatever expanded is whole kcp-go segments that compact and
		// expand back to themselves.
		if len(segs) == 0 {
			require.False(t, ok)
			return
		}
		again, ok2 := expandBoth(t, compactCopy(t, segs), ref)
		require.True(t, ok2)
		require.Equal(t, segs, again)
		st := Sticky{Una: sndUna, Wnd: wnd, Valid: true}
		in := bytes.Clone(segs)
		sticky, _, ok3 := CompactFit(in, len(in), &st)
		require.True(t, ok3)
		again, ok2 = expandBoth(t, bytes.Clone(sticky), ref)
		require.True(t, ok2)
		require.Equal(t, segs, again)
	})
}
