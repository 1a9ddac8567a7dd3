package wire

import "encoding/binary"

// KCP segment header, as kcp-go writes it (docs/protocol.md section 3.5):
//
//	 0          4     5     6       8          12         16         20         24
//	+----------+-----+-----+-------+----------+----------+----------+----------+
//	| conv u32 | cmd | frg | wnd   | ts u32   | sn u32   | una u32  | len u32  |
//	+----------+-----+-----+-------+----------+----------+----------+----------+
//	| data (len bytes) ...
//
// No other package touches a KCP header offset.
/* Specification constants (KCP) */
const (
	SegmentHeaderSize = 24

	CmdPush byte = 81 // data
	CmdAck  byte = 82 // acknowledgment of sn, carrying the data's ts
	CmdWask byte = 83 // window probe: ask the peer for its window
	CmdWins byte = 84 // window size: the answer to a probe
)

// Segment is a view of one KCP segment: at least SegmentHeaderSize bytes,
// the header then its data. Accessors assume the header is present; use
// NextSegment to cut a segment from peer input.
type Segment []byte

// Conv is the conversation the segment belongs to.
func (s Segment) Conv() uint32 { return binary.LittleEndian.Uint32(s[0:4]) }

// Cmd is the segment's command, one of the Cmd constants.
func (s Segment) Cmd() byte { return s[4] }

// Frg counts the segments of the message that follow this one.
func (s Segment) Frg() byte { return s[5] }

// Wnd is the sender's receive window, in segments.
func (s Segment) Wnd() uint16 { return binary.LittleEndian.Uint16(s[6:8]) }

// Ts is the sender's KCP clock when it sent the segment, in milliseconds.
func (s Segment) Ts() uint32 { return binary.LittleEndian.Uint32(s[8:12]) }

// Sn is the segment's sequence number.
func (s Segment) Sn() uint32 { return binary.LittleEndian.Uint32(s[12:16]) }

// Una is the sender's next expected sequence number: everything below it
// arrived.
func (s Segment) Una() uint32 { return binary.LittleEndian.Uint32(s[16:20]) }

// Len is the data length the header declares.
func (s Segment) Len() uint32 { return binary.LittleEndian.Uint32(s[20:24]) }

// Data is the segment's data: the bytes after the header.
func (s Segment) Data() []byte { return s[SegmentHeaderSize:] }

// SetConv sets the conversation.
func (s Segment) SetConv(v uint32) { binary.LittleEndian.PutUint32(s[0:4], v) }

// SetCmd sets the command.
func (s Segment) SetCmd(v byte) { s[4] = v }

// SetFrg sets the fragment count.
func (s Segment) SetFrg(v byte) { s[5] = v }

// SetWnd sets the window.
func (s Segment) SetWnd(v uint16) { binary.LittleEndian.PutUint16(s[6:8], v) }

// SetTs sets the timestamp.
func (s Segment) SetTs(v uint32) { binary.LittleEndian.PutUint32(s[8:12], v) }

// SetSn sets the sequence number.
func (s Segment) SetSn(v uint32) { binary.LittleEndian.PutUint32(s[12:16], v) }

// SetUna sets the una.
func (s Segment) SetUna(v uint32) { binary.LittleEndian.PutUint32(s[16:20], v) }

// SetLen sets the declared data length.
func (s Segment) SetLen(v uint32) { binary.LittleEndian.PutUint32(s[20:24], v) }

// NextSegment cuts the first segment off p. It reports false when p is
// shorter than a header or than the data length the header declares.
func NextSegment(p []byte) (seg Segment, rest []byte, ok bool) {
	if len(p) < SegmentHeaderSize {
		return nil, p, false
	}
	n := Segment(p).Len()
	if uint64(n) > uint64(len(p)-SegmentHeaderSize) {
		return nil, p, false
	}
	end := SegmentHeaderSize + int(n)
	return Segment(p[:end]), p[end:], true
}

// SegmentSize returns the size of the segment at the start of p: its header
// and the data it declares, capped at len(p). A p shorter than a header is
// one (truncated) segment.
func SegmentSize(p []byte) int {
	n := uint64(SegmentHeaderSize)
	if len(p) >= SegmentHeaderSize {
		n += uint64(Segment(p).Len())
	}
	return int(min(n, uint64(len(p))))
}
