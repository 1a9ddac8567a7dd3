package wire

import (
	"bytes"
	"testing"
)

// benchFrames are the frames the benchmarks compact and expand: one
// full-size data segment (the bulk case), a run of 20 ACKs, and two ACKs
// in front of a full-size data segment.
func benchFrames() []struct {
	name string
	segs []byte
} {
	data := make([]byte, 1355)
	var acks, mixed []byte
	for i := range 20 {
		acks = append(acks, testSeg(7, CmdAck, 0, 256, 1000, uint32(100+i), 90, nil)...)
	}
	mixed = append(mixed, testSeg(7, CmdAck, 0, 256, 1000, 100, 90, nil)...)
	mixed = append(mixed, testSeg(7, CmdAck, 0, 256, 1000, 102, 90, nil)...)
	mixed = append(mixed, testSeg(7, CmdPush, 0, 256, 1000, 5000, 90, data)...)
	return []struct {
		name string
		segs []byte
	}{
		{"data", testSeg(7, CmdPush, 0, 256, 1000, 5000, 90, data)},
		{"acks", acks},
		{"acks+data", mixed},
	}
}

// BenchmarkCompact: Compact in place. Each op first restores the
// segments: the 24-byte header of a lone segment (the data does not
// move), the whole frame otherwise (BenchmarkCopyBaseline's cost).
func BenchmarkCompact(b *testing.B) {
	for _, f := range benchFrames() {
		b.Run(f.name, func(b *testing.B) {
			buf := bytes.Clone(f.segs)
			restore := f.segs
			if f.name == "data" {
				restore = f.segs[:SegmentHeaderSize]
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(f.segs)))
			for b.Loop() {
				copy(buf, restore)
				if _, ok := Compact(buf); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkExpand: ExpandInPlace with room in front (the receive path of
// a frame of one record in its own datagram; each op restores the record
// header in front of the data, which does not move) and Expand into a
// scratch buffer (several records, frames recovered by FEC or
// reassembled from fragments).
func BenchmarkExpand(b *testing.B) {
	ref := Refs{Conv: 7, RcvNxt: 4990, SndUna: 95}
	for _, f := range benchFrames() {
		frame, _ := Compact(bytes.Clone(f.segs))
		frame = bytes.Clone(frame)
		if f.name == "data" { // ExpandInPlace takes single records only
			b.Run(f.name+"/in-place", func(b *testing.B) {
				room := len(f.segs) - len(frame)
				buf := make([]byte, room+len(frame))
				copy(buf[room:], frame)
				restore := frame[:len(frame)-len(Segment(f.segs).Data())] // the record header
				b.ReportAllocs()
				b.SetBytes(int64(len(frame)))
				for b.Loop() {
					copy(buf[room:], restore)
					if _, ok, fit := ExpandInPlace(buf, room, ref); !ok || !fit {
						b.Fatal("refused")
					}
				}
			})
		}
		b.Run(f.name+"/scratch", func(b *testing.B) {
			scratch := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				segs, ok := Expand(scratch[:0], frame, ref)
				if !ok {
					b.Fatal("refused")
				}
				scratch = segs[:0]
			}
		})
	}
}

// BenchmarkCopyBaseline: copying each frame once, the cost a scratch
// buffer or a moved payload adds.
func BenchmarkCopyBaseline(b *testing.B) {
	for _, f := range benchFrames() {
		b.Run(f.name, func(b *testing.B) {
			buf := make([]byte, len(f.segs))
			b.SetBytes(int64(len(f.segs)))
			for b.Loop() {
				copy(buf, f.segs)
			}
		})
	}
}
