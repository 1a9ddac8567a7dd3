package arq

import (
	"github.com/uxp-go/uxp/internal/wire"
)

// ACK repetition (the receive side).
//
// KCP acknowledges each data segment once, with an ACK segment of its own,
// and una says only where the first hole is. A lost ACK packet (with ACK
// thinning one packet acknowledges two or more segments) loses those
// acknowledgements for good while a hole holds una below them: the sender
// counts the later ACKs past them, declares them lost and sends them again
// (measured through a 20 Mbit/s bottleneck with 5 % loss both ways: 6.6 %
// of the packets retransmitted where 5.3 % were lost). TCP's SACK blocks
// repeat what was received out of order in every ACK, so one lost ACK
// costs nothing.
//
// A lane does the same with KCP's own segments: every packet it sends that
// carries ACKs repeats, in front of them, the ACKs of the previous such
// packet whose sn is still at or above the packet's una (received out of
// order; una covers the others). So each out-of-order acknowledgement
// goes out twice, in two packets, and both must be lost for the sender to
// miss it (5 % → 0.25 % at 5 % loss). The repeats go first: KCP's sender
// takes the timestamp of the last ACK segment of an input as its RTT
// sample, which stays the newest. The sender's ARQ passes a repeat of an
// ACK it already saw to KCP neutralised (bounds.go), and a repeat costs
// 24 bytes only while a hole is open. Nothing on the wire is new: a
// repeat is an ordinary ACK segment.

/* Implementation constants */
const (
	// maxReAcks bounds the ACKs a packet repeats (and a lane remembers):
	// ACK thinning sends one packet per two full-size segments, or more
	// after a delay; beyond this the oldest go unrepeated.
	maxReAcks = 8
)

// ReAcks is the ACK segments the lanes repeated so far.
func (ls *Lanes) ReAcks() uint64 { return ls.reAcks }

// ackItem is one ACK segment's sn and echoed timestamp.
type ackItem struct{ sn, ts uint32 }

// reAck is a lane's ACK repetition state: the out-of-order ACKs of the
// last packet that carried ACKs.
type reAck struct {
	items [maxReAcks]ackItem
	n     int
	// The current packet's, gathered by output.
	cur  [maxReAcks]ackItem
	curN int
	has  bool // the current packet carries ACK segments
}

// noteAck records an ACK segment of the packet output is building.
func (r *reAck) noteAck(seg wire.Segment) {
	r.has = true
	if sn := seg.Sn(); int32(sn-seg.Una()) >= 0 && r.curN < maxReAcks {
		r.cur[r.curN] = ackItem{sn, seg.Ts()}
		r.curN++
	}
}

// withReAcks returns pkt, a packet of l's segments that carries ACKs
// (reAck.has), with the repeats the previous such packet owes in front,
// in the shard's scratch; pkt itself when none are owed. una and wnd are
// the packet's receive state. It then remembers this packet's
// out-of-order ACKs for the next one.
func (ls *Lanes) withReAcks(l *lane, pkt []byte, una uint32, wnd uint16) []byte {
	r := &l.reack
	out := pkt
	if ls.noReAck {
		r.curN, r.has = 0, false
		return pkt
	}
	room := (ls.mtu - len(pkt)) / wire.SegmentHeaderSize
	buf := ls.sh.reack[:0]
	for _, a := range r.items[:r.n] {
		if room <= 0 {
			break // (below zero: pkt is a segment built for a larger MTU)
		}
		if int32(a.sn-una) < 0 || r.sent(a.sn) {
			continue // una covers it now, or this packet acknowledges it again
		}
		buf = append(buf, make([]byte, wire.SegmentHeaderSize)...)
		seg := wire.Segment(buf[len(buf)-wire.SegmentHeaderSize:])
		seg.SetConv(ls.cfg.Conv)
		seg.SetCmd(wire.CmdAck)
		seg.SetWnd(wnd)
		seg.SetTs(a.ts)
		seg.SetSn(a.sn)
		seg.SetUna(una)
		room--
	}
	if len(buf) > 0 {
		buf = append(buf, pkt...)
		ls.sh.reack = buf
		out = buf
		ls.reAcks += uint64((len(buf) - len(pkt)) / wire.SegmentHeaderSize)
	}
	r.items, r.n = r.cur, r.curN
	r.curN, r.has = 0, false
	return out
}

// sent reports whether the current packet acknowledges sn.
func (r *reAck) sent(sn uint32) bool {
	for _, a := range r.cur[:r.curN] {
		if a.sn == sn {
			return true
		}
	}
	return false
}
