package wire

import (
	"encoding/binary"
	"slices"
)

// Compact segment records (docs/protocol.md section 3.5). On the wire, the
// body of a KCP frame (type 1) and of a lane frame (type 10, after the
// lane byte) is one or more records, each a KCP segment without its conv
// and with 16-bit ts, sn and una:
//
//	 0       1              5        7        9        10       12
//	+-------+--------------+--------+--------+--------+--------+---------
//	|   A   | [una u16     | ts u16 | sn u16 | [frg   | [len   | data ...
//	|       |  wnd u16] U  |        |        |  u8] F |  u16] L| (PUSH)
//	+-------+--------------+--------+--------+--------+--------+---------
//
//	A: bits 0-1 cmd - 81 (PUSH, ACK, WASK, WINS); bit 2 U; bit 3 L;
//	   bit 4 F; bits 5-7 zero.
//
// Without U a record repeats the previous record's una and wnd; the first
// record of a frame without U means "unchanged": the receiver takes the
// una it holds from this peer on this lane (Refs.SndUna, which KCP's
// parse_una ignores) and the last wnd it took (Refs.Wnd). Without L its
// data runs to the end of the frame (only the last record may omit it);
// without F its frg is 0. Only a PUSH carries data. The receiver expands
// sn and una to 32 bits as the values nearest its own state (Refs), which
// is exact while sequence distances stay below 2^15 (Config.KCP windows
// are capped at 2^14 for this); an ACK's ts as the latest value not after
// its own KCP clock (Refs.Now) plus ackTSSlack, exact for round trips
// below 64 s; the ts of a PUSH, WASK or WINS, which the receiver only
// echoes in its ACK, as the 16-bit value itself.
//
// Inside the SDK every other layer sees kcp-go's 24-byte segments:
// Compact turns them into a record frame at the very end of the send path,
// and Expand turns a record frame back into segments before the ARQ sees
// it.
/* Specification constants */
const (
	RecordFlagU    byte = 1 << 2 // una and wnd follow
	RecordFlagL    byte = 1 << 3 // len follows
	RecordFlagF    byte = 1 << 4 // frg follows
	recordCmdMask  byte = 0x03
	recordReserved byte = 0xe0

	// RecordMaxHeader is the longest record header (A, una, wnd, ts, sn,
	// frg, len); RecordLastMaxHeader the longest of a frame's last record,
	// which never needs len.
	RecordMaxHeader     = 12
	RecordLastMaxHeader = 10
	// RecordSaving is what the compact form saves at least on a frame of
	// kcp-go segments: 24 − 10 on its last record, 24 − 12 on every other.
	// KCP's MTU is the frame room plus this (docs/protocol.md section 2),
	// so that a frame kcp-go fills exactly fills the datagram when its
	// record carries U, and is 4 bytes short of it when it does not.
	RecordSaving = SegmentHeaderSize - RecordLastMaxHeader
)

/* Implementation constants */
const (
	// maxRecords bounds the segments Compact rewrites in one frame: kcp-go
	// never puts more than its MTU (at most 1,512 bytes) in one output
	// call, so at most 63 segments of 24 bytes.
	maxRecords = 128
	// ackTSSlack is how far past the receiver's own KCP clock an ACK's ts
	// may lie and still expand to a time not yet reached rather than one
	// 65 s ago: kcp-go stamps segments from its package clock when it
	// flushes, which can run ahead of the millisecond of the event a later
	// ACK is taken in (internal/kcpx Ms) by the event's running time.
	ackTSSlack = 1 << 10
)

// Refs is the receiving lane's state that Expand completes records
// against.
type Refs struct {
	Conv   uint32 // the session ID: every segment's conv
	RcvNxt uint32 // the next sn the lane's KCP expects: PUSH, WASK, WINS sn
	SndUna uint32 // the lane's oldest unacknowledged sn: una, ACK sn; the una of a frame whose first record has no U
	Wnd    uint16 // the last wnd the lane took from the peer: the wnd of a frame whose first record has no U
	Now    uint32 // the receiver's KCP clock (ms): ACK ts
}

// Sticky is a lane's send-side state for leaving U out of a frame's first
// record: the una and wnd of the last record the lane sent, which the
// peer holds unless that frame was lost or overtaken. The caller keeps
// one per lane and decides when the next frame must carry U anyway
// (Renew: the Go implementation renews at least every few packets and a
// fraction of the RTT, so that a lost update is repaired soon).
type Sticky struct {
	Una   uint32
	Wnd   uint16
	Valid bool // a frame was sent: Una and Wnd are its last record's
	Renew bool // the next frame's first record carries U regardless
}

// omitU reports whether a frame's first record, seg, may leave out U
// against st: the peer holds its una and wnd already.
func (st *Sticky) omitU(seg Segment) bool {
	return st != nil && st.Valid && !st.Renew && seg.Una() == st.Una && seg.Wnd() == st.Wnd
}

// nearest is the 32-bit value nearest ref whose low 16 bits are x.
func nearest(ref uint32, x uint16) uint32 {
	return ref + uint32(int32(int16(x-uint16(ref))))
}

// ackTS is the ts of an ACK, x on the wire, completed against now, the
// receiver's KCP clock: the latest value not after now + ackTSSlack whose
// low 16 bits are x. An ACK echoes a ts of the receiver's own clock, so
// this is exact while the round trip is below 2^16 − ackTSSlack ms.
func ackTS(now uint32, x uint16) uint32 {
	top := now + ackTSSlack
	return top - uint32(uint16(top)-x)
}

// recordHeaderSize is the size of the record header for seg, given
// whether it carries U and whether it is the frame's last record; ok is
// false when seg cannot be a record.
func recordHeaderSize(seg Segment, withU, last bool) (n int, flags byte, ok bool) {
	c, frg, size := seg[4], seg[5], binary.LittleEndian.Uint32(seg[20:24])
	cmd := c - CmdPush
	if cmd > recordCmdMask || size > 0xffff || c != CmdPush && (size != 0 || frg != 0) {
		return 0, 0, false
	}
	n, flags = 1+2+2, cmd
	if withU {
		n, flags = n+4, flags|RecordFlagU
	}
	if !last {
		n, flags = n+2, flags|RecordFlagL
	}
	if frg != 0 {
		n, flags = n+1, flags|RecordFlagF
	}
	return n, flags, true
}

// needsU reports whether seg, a record after the first, carries U: it
// changes the previous record's una or wnd, or it is a window probe or
// answer, whose wnd a receiver must find in the record itself.
func needsU(seg Segment, una uint32, wnd uint16) bool {
	return uint16(seg.Una()) != uint16(una) || seg.Wnd() != wnd || seg[4] >= CmdWask
}

// CompactSize returns the size of segs, kcp-go segments, as a record
// frame whose first record carries U (Compact). ok is false when segs is
// empty or not a sequence of whole segments that records can carry
// (kcp-go never produces one).
func CompactSize(segs []byte) (n int, ok bool) {
	var una uint32
	var wnd uint16
	first := true
	for p := segs; len(p) > 0; {
		seg, rest, cut := NextSegment(p)
		if !cut {
			return 0, false
		}
		h, _, good := recordHeaderSize(seg, first || needsU(seg, una, wnd), len(rest) == 0)
		if !good {
			return 0, false
		}
		n += h + len(seg.Data())
		una, wnd, first, p = seg.Una(), seg.Wnd(), false, rest
	}
	return n, !first
}

// Compact rewrites segs, kcp-go segments, in place into a record frame
// that ends where segs ends, and returns it (a suffix of segs); its first
// record carries U. The last segment's data does not move, so the common
// frame of one data segment costs a header write and no copy; the data of
// earlier segments moves toward the end. ok is false, and segs is left
// unchanged, when CompactSize would fail or segs holds more than
// maxRecords segments.
func Compact(segs []byte) (frame []byte, ok bool) {
	frame, _, ok = CompactFit(segs, len(segs), nil)
	return frame, ok
}

// CompactFit is Compact when the record frame takes at most room bytes:
// size is what it takes, and frame is nil, segs unchanged, when that is
// more than room. One pass over the headers decides and sizes, the second
// writes.
//
// With st, the frame's first record leaves out U when st.omitU allows it
// and the frame carries no ACK, WASK or WINS record (the Go
// implementation's rule: every frame that acknowledges or answers a probe
// states una and wnd); once the frame is written, st holds its last
// record's una and wnd. Without st the first record always carries U.
func CompactFit(segs []byte, room int, st *Sticky) (frame []byte, size int, ok bool) {
	var offs [maxRecords]uint16
	var hdrs [maxRecords]uint8
	var flags [maxRecords]byte
	var una uint32
	var wnd uint16
	k, size, ctl := 0, 0, false
	if len(segs) > 0xffff {
		return nil, 0, false
	}
	for p := segs; len(p) > 0; k++ {
		seg, rest, cut := NextSegment(p)
		if !cut || k == maxRecords {
			return nil, 0, false
		}
		var withU bool
		if k == 0 {
			withU = !st.omitU(seg)
		} else {
			withU = needsU(seg, una, wnd)
		}
		h, f, good := recordHeaderSize(seg, withU, len(rest) == 0)
		if !good {
			return nil, 0, false
		}
		ctl = ctl || f&recordCmdMask != 0
		offs[k], hdrs[k], flags[k] = uint16(len(segs)-len(p)), uint8(h), f
		size += h + len(seg.Data())
		una, wnd, p = seg.Una(), seg.Wnd(), rest
	}
	if k == 0 {
		return nil, 0, false
	}
	if ctl && flags[0]&RecordFlagU == 0 {
		flags[0] |= RecordFlagU
		hdrs[0] += 4
		size += 4
	}
	if size > room {
		return nil, size, true
	}
	// Back to front: record i's output lies at or after its input, and
	// before the output of record i+1, so writing it disturbs neither the
	// segments still to read nor the records written.
	end := len(segs)
	for i := k - 1; i >= 0; i-- {
		seg := Segment(segs[offs[i]:])
		n := int(seg.Len())
		ts, sn, sUna, sWnd, frg := seg.Ts(), seg.Sn(), seg.Una(), seg.Wnd(), seg.Frg()
		at := end - n - int(hdrs[i])
		copy(segs[at+int(hdrs[i]):end], segs[int(offs[i])+SegmentHeaderSize:int(offs[i])+SegmentHeaderSize+n])
		putRecordHeader(segs[at:], flags[i], sUna, sWnd, ts, sn, frg, n)
		end = at
	}
	if st != nil {
		st.Una, st.Wnd, st.Valid = una, wnd, true
	}
	return segs[end:], size, true
}

// putRecordHeader writes a record header with the given flags into b.
func putRecordHeader(b []byte, flags byte, una uint32, wnd uint16, ts, sn uint32, frg byte, n int) {
	b[0] = flags
	i := 1
	if flags&RecordFlagU != 0 {
		binary.LittleEndian.PutUint16(b[i:], uint16(una))
		binary.LittleEndian.PutUint16(b[i+2:], wnd)
		i += 4
	}
	binary.LittleEndian.PutUint16(b[i:], uint16(ts))
	binary.LittleEndian.PutUint16(b[i+2:], uint16(sn))
	i += 4
	if flags&RecordFlagF != 0 {
		b[i] = frg
		i++
	}
	if flags&RecordFlagL != 0 {
		binary.LittleEndian.PutUint16(b[i:], uint16(n))
	}
}

// record is one parsed record.
type record struct {
	cmd      byte
	una, sn  uint16
	wnd      uint16
	ts       uint16
	frg      byte
	hdr, n   int // header and data size
	hasU     bool
	complete bool // parsed without error
}

// nextRecord parses the record at the start of p; una and wnd are the
// previous record's (first: the values the receiver holds).
func nextRecord(p []byte, una, wnd uint16) (r record) {
	if len(p) < 1 {
		return r
	}
	a := p[0]
	if a&recordReserved != 0 {
		return r
	}
	r.cmd = CmdPush + a&recordCmdMask
	r.hasU = a&RecordFlagU != 0
	need := 1 + 4
	if r.hasU {
		need += 4
	}
	if a&RecordFlagF != 0 {
		need++
	}
	if a&RecordFlagL != 0 {
		need += 2
	}
	if len(p) < need {
		return r
	}
	i := 1
	r.una, r.wnd = una, wnd
	if r.hasU {
		r.una = binary.LittleEndian.Uint16(p[1:])
		r.wnd = binary.LittleEndian.Uint16(p[3:])
		i = 5
	}
	r.ts = binary.LittleEndian.Uint16(p[i:])
	r.sn = binary.LittleEndian.Uint16(p[i+2:])
	i += 4
	if a&RecordFlagF != 0 {
		r.frg = p[i]
		i++
	}
	if a&RecordFlagL != 0 {
		r.n = int(binary.LittleEndian.Uint16(p[i:]))
		i += 2
		if r.n > len(p)-i {
			return r
		}
	} else {
		r.n = len(p) - i // the last record: the data runs to the end
	}
	if r.cmd != CmdPush && (r.n != 0 || r.frg != 0) {
		// ACKs and window segments carry no data and no fragment number
		// (KCP would skip the data unread).
		return r
	}
	r.hdr, r.complete = i, true
	return r
}

// putSegment writes the segment header of r, completed against ref, into
// b.
func putSegment(b []byte, r *record, ref *Refs) {
	_ = b[SegmentHeaderSize-1]
	sn, ts := nearest(ref.RcvNxt, r.sn), uint32(r.ts)
	if r.cmd == CmdAck {
		sn, ts = nearest(ref.SndUna, r.sn), ackTS(ref.Now, r.ts)
	}
	binary.LittleEndian.PutUint32(b[0:4], ref.Conv)
	b[4], b[5] = r.cmd, r.frg
	binary.LittleEndian.PutUint16(b[6:8], r.wnd)
	binary.LittleEndian.PutUint32(b[8:12], ts)
	binary.LittleEndian.PutUint32(b[12:16], sn)
	binary.LittleEndian.PutUint32(b[16:20], nearest(ref.SndUna, r.una))
	binary.LittleEndian.PutUint32(b[20:24], uint32(r.n))
}

// Expand appends the kcp-go segments of the record frame body, completed
// against ref, to dst. A malformed record ends the frame: segs holds the
// records before it and ok is false (an empty body is malformed too).
func Expand(dst, body []byte, ref Refs) (segs []byte, ok bool) {
	una, wnd := uint16(ref.SndUna), ref.Wnd
	start := len(dst)
	for p := body; len(p) > 0; {
		r := nextRecord(p, una, wnd)
		if !r.complete {
			return dst[start:], false
		}
		at := len(dst)
		dst = slices.Grow(dst, SegmentHeaderSize+r.n)[:at+SegmentHeaderSize+r.n]
		putSegment(dst[at:], &r, &ref)
		copy(dst[at+SegmentHeaderSize:], p[r.hdr:r.hdr+r.n])
		una, wnd, p = r.una, r.wnd, p[r.hdr+r.n:]
	}
	return dst[start:], len(body) > 0
}

// ExpandInPlace is Expand into buf itself for a frame of one record,
// buf[off:], where buf[:off] is free room: the segment header goes in
// front of the record's data, which does not move. fit is false, and buf
// is untouched, for a frame of several records (or a malformed one) or
// when the room is too small; the caller then uses Expand. Several records
// are not worth it: they are small (ACKs in front of one data segment at
// most), and moving each in place costs more than the one copy of Expand
// (BenchmarkExpand).
func ExpandInPlace(buf []byte, off int, ref Refs) (segs []byte, ok, fit bool) {
	body := buf[off:]
	r := nextRecord(body, uint16(ref.SndUna), ref.Wnd)
	if !r.complete || r.hdr+r.n != len(body) {
		return nil, false, false
	}
	at := off + r.hdr - SegmentHeaderSize
	if at < 0 {
		return nil, false, false
	}
	putSegment(buf[at:], &r, &ref)
	return buf[at:], true, true
}
