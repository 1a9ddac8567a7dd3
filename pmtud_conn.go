package uxp

import (
	"time"

	"github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// The session side of path MTU discovery (pmtud.go): probes, their
// acknowledgements, and what a change of the packet size does.
//
// KCP segments in flight. An acknowledged probe raises the packet size,
// and each lane's KCP then builds its new segments for it (SetMtu). When
// the path shrinks, segments KCP built for the larger size are still in
// its send buffer, and KCP retransmits a segment as it was built: it
// cannot split one. So emitFrame checks every KCP frame against the
// current packet size. A frame of several segments is split at segment
// boundaries into frames that fit. A single segment that does not fit
// (built before the shrink) travels in fragment frames (type 15) that the
// peer reassembles into the original frame before KCP sees it. Only those
// old segments ever need fragments; KCP builds every new one to fit.

// PathMTUHandler is an optional interface a ConnHandler may implement to
// learn when the session's packet size changes: path MTU discovery
// confirmed a larger size, or found a black hole and fell back. mtu is the
// new Conn.PathMTU. It runs on the session's worker, like the other
// callbacks.
//
//	var _ uxp.PathMTUHandler = (*MyHandler)(nil)
type PathMTUHandler interface {
	OnPathMTUChanged(c *Conn, mtu int)
}

// PathMTU returns the packet size the session uses now: the largest
// datagram it sends, as path MTU discovery has confirmed it (at least
// 1200 bytes, at most Conn.MTU). MaxDatagramSize and the KCP segment
// size follow it. Safe from any goroutine.
func (c *Conn) PathMTU() int { return int(c.pathMTU.Load()) }

// curMTU is the packet size in use, read on the shard.
func (c *Conn) curMTU() int { return c.pmtu.cur }

// initPMTU starts the search from the base, which MaxMessageSize may
// raise (a message must fit in KCP's 255 fragments at every size used).
func (c *Conn) initPMTU(now time.Time) {
	base := max(min(pmtuBase, c.mtu), c.ep.set.minMTU())
	c.pmtu = newPMTU(base, c.mtu, c.id, now)
	c.pathMTU.Store(int32(c.pmtu.cur))
}

// probeTimeout is how long a probe waits for its acknowledgement.
func (c *Conn) probeTimeout() time.Duration {
	return min(max(2*c.hb.srtt+4*c.hb.rttvar, pmtuMinTimeout), pmtuMaxTimeout)
}

// pmtuTick runs the search's timers and sends the probe they ask for.
// While the worker is behind it sends nothing: probes wait, like rekeys,
// until the worker has caught up (pmtud.go, Overload).
func (c *Conn) pmtuTick(now time.Time) {
	if c.shard.behind.Load() {
		c.pmtu.overloaded(now, c.traffic.retrans.Load())
		return
	}
	size, id, changed := c.pmtu.tick(now, c.traffic.retrans.Load(), c.probeTimeout())
	if changed {
		c.pathMTUChanged()
	}
	if size > 0 {
		c.sendProbe(size, id)
	}
}

// sendProbe sends a probe datagram of exactly size bytes.
func (c *Conn) sendProbe(size int, id uint32) {
	n := size - wire.TransportOverhead
	s := c.shard
	if s.probeBuf == nil {
		s.probeBuf = make([]byte, maxMTU)
	}
	b := s.probeBuf[:n]
	clear(b)
	wire.PutMTUProbe(b, id)
	c.sendFrame(wire.FrameMTUProbe, b)
}

// pmtuInput handles a probe, a probe acknowledgement or a fragment.
func (c *Conn) pmtuInput(kind byte, body []byte, now time.Time) {
	switch kind {
	case wire.FrameMTUProbe:
		id, ok := wire.ParseMTUProbe(body)
		if !ok {
			c.drop(dropMalformed)
			return
		}
		// Acknowledge with the size that arrived: smaller than the
		// probe, so probes cannot be used to amplify.
		var ack [wire.MTUAckSize]byte
		wire.PutMTUAck(ack[:], wire.MTUAck{ID: id, Size: uint16(len(body) + wire.TransportOverhead)})
		c.sendFrame(wire.FrameMTUAck, ack[:])
	case wire.FrameMTUAck:
		a, ok := wire.ParseMTUAck(body)
		if !ok {
			c.drop(dropMalformed)
			return
		}
		if c.pmtu.ack(a.ID, int(a.Size), now) {
			c.pathMTUChanged()
		}
		c.pmtuTick(now) // the next probe of the search, if any
	case wire.FrameFragment:
		c.fragmentInput(body)
	}
}

// pathMTUChanged applies a new packet size: KCP segment size, the
// published PathMTU, and the application's callback.
func (c *Conn) pathMTUChanged() {
	cur := c.pmtu.cur
	c.pathMTU.Store(int32(cur))
	c.arq.SetMTU(c.kcpMTU()) // keeps the shard's flush buffer
	c.tr.pathMTU(c.id, cur)
	if h, ok := c.handlerFor().(PathMTUHandler); ok {
		defer c.recoverCallback("OnPathMTUChanged")
		h.OnPathMTUChanged(c, cur)
	}
}

// emitKCP sends lane's KCP or lane frame, hdr then segs, kcp-go segments,
// as compact records (internal/wire record.go), and returns their size.
// The records are written over segs in place (wire.CompactFit), so a
// frame of one data segment goes out without another copy of its data;
// its first record leaves out una and wnd when the peer holds them
// (recordU). A frame larger than the packet size now in use (segments
// built before a shrink) is split at segment boundaries into frames that
// fit, each its own record frame (its first record carries una and wnd),
// and a segment that does not fit alone travels in fragments.
//
// A frame for FEC (viaFEC) while frames go through the encoder must fit a
// shard, fecFraming bytes less. Segments built before the KCP MTU came
// down for FEC (fec_sizing.go) may not: they are split the same way, and
// a segment that fits a datagram but not a shard goes alone, directly,
// outside FEC (emitFrame).
func (c *Conn) emitKCP(lane int, kind byte, hdr, segs []byte, viaFEC bool) int {
	direct := frameRoomSized(c.curMTU(), false) - len(hdr)
	room := direct
	if viaFEC && c.fecShards() {
		room -= fecFraming
	}
	u := c.recordU(lane)
	frame, size, ok := wire.CompactFit(segs, room, &u.st)
	switch {
	case !ok:
		// Cannot happen: kcp-go and the lanes build whole segments of
		// the four commands. Drop them loudly; KCP resends data.
		c.ep.log.Error("uxp: lane segments the wire cannot carry", "session", c.id)
		return 0
	case frame != nil:
		u.sent(frame, c.shard.now)
		c.emitFrame(kind, hdr, frame, viaFEC)
		return size
	}
	// Rare (after the packet size shrank): the frames below all carry U,
	// and the next frame too, rather than track which went where.
	u.st.Valid = false
	start := 0
	for p := 0; p < len(segs); {
		n := wire.SegmentSize(segs[p:])
		if p > start {
			if part, _ := wire.CompactSize(segs[start : p+n]); part > room {
				c.emitRecords(kind, hdr, segs[start:p], viaFEC)
				start = p
			}
		}
		if part, _ := wire.CompactSize(segs[p : p+n]); part > room {
			if part <= direct {
				c.emitRecords(kind, hdr, segs[p:p+n], viaFEC) // too large for a shard: emitFrame sends it directly
			} else if frame, ok := wire.Compact(segs[p : p+n]); ok {
				c.sendFragments(kind, hdr, frame)
			}
			start = p + n
		}
		p += n
	}
	if start < len(segs) {
		c.emitRecords(kind, hdr, segs[start:], viaFEC)
	}
	return size
}

// emitRecords sends segs, whole kcp-go segments, as one record frame.
func (c *Conn) emitRecords(kind byte, hdr, segs []byte, viaFEC bool) {
	frame, ok := wire.Compact(segs)
	if !ok {
		return // cannot happen: emitKCP checked the segments
	}
	c.emitFrame(kind, hdr, frame, viaFEC)
}

// sendFragments sends the inner frame kind || hdr || seg (one record) in
// fragment frames that fit the current packet size, outside FEC.
func (c *Conn) sendFragments(kind byte, hdr, seg []byte) {
	inner := make([]byte, 0, wire.FrameHeaderSize+len(hdr)+len(seg))
	inner = append(append(append(inner, kind), hdr...), seg...)
	c.fragID++
	c.fragsSent.Add(1)
	room := c.curMTU() - wire.TransportOverhead - wire.FragmentHeaderSize
	var h [wire.FragmentHeaderSize]byte
	for off := 0; off < len(inner); off += room {
		wire.PutFragment(h[:], wire.Fragment{ID: c.fragID, Offset: uint16(off), Total: uint16(len(inner))})
		c.sendFrameTo(wire.FrameFragment, h[:], inner[off:min(off+room, len(inner))], c.remoteAP)
	}
}

// fragState reassembles one fragmented inner frame at a time: fragments
// of a newer id replace an unfinished older one (KCP resends what was
// lost).
type fragState struct {
	id     uint16
	total  int
	filled int
	offs   []uint16 // offsets received, against duplicates
	buf    []byte
}

func (c *Conn) fragmentInput(body []byte) {
	h, data, ok := wire.ParseFragment(body, maxFragmentedSize)
	if !ok {
		c.drop(dropMalformed)
		return
	}
	id, off, total := h.ID, int(h.Offset), int(h.Total)
	f := c.frag
	if f == nil {
		f = &fragState{buf: make([]byte, maxFragmentedSize)}
		c.frag = f
	}
	if f.id != id || f.total != total || f.filled == 0 {
		f.id, f.total, f.filled, f.offs = id, total, 0, f.offs[:0]
	}
	for _, o := range f.offs {
		if int(o) == off {
			return // a duplicate
		}
	}
	if len(f.offs) >= maxFragmentedSize/pmtuMinFragment {
		c.drop(dropMalformed)
		return
	}
	f.offs = append(f.offs, uint16(off))
	copy(f.buf[off:], data)
	f.filled += len(data)
	if f.filled < f.total {
		return
	}
	inner := f.buf[:f.total]
	f.filled, f.offs = 0, f.offs[:0]
	if len(inner) < wire.FrameHeaderSize {
		c.drop(dropMalformed)
		return
	}
	switch inner[0] {
	case wire.FrameKCP:
		c.laneInput(0, inner, wire.FrameHeaderSize, kcp.IKCP_PACKET_REGULAR)
	case wire.FrameLane:
		c.laneFrameInput(inner, wire.FrameHeaderSize, kcp.IKCP_PACKET_REGULAR)
	default:
		c.drop(dropMalformed)
	}
}
