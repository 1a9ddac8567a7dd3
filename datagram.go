package uxp

import (
	"sync/atomic"

	"github.com/uxp-go/uxp/internal/wire"
)

// Unreliable datagrams: one message in one transport packet, sent once, no
// ACK, no retransmission. Like every packet they are sealed and
// replay-checked, so a datagram is delivered at most once; it may be lost
// or arrive out of order. With FEC on they travel as inner frames of FEC
// shards, so parity repairs them like KCP data.
//
//	frame 11 (datagram):        payload
//	frame 12 (latest datagram): channel (u8) | sequence (u32) | payload
//
// A latest datagram is delivered only if its sequence number is newer
// (serial arithmetic on u32) than the newest one delivered on its channel;
// an older one is dropped and counted as superseded. Each side numbers its
// own channels from 0.

// DatagramHandler is an optional interface of a ConnHandler: a handler
// that implements it receives the peer's datagrams. Without it datagrams
// are counted in ConnStats.Datagrams.Received and ConnStats.Unhandled,
// then discarded, and a warning is logged once per session.
//
// Check at compile time that your handler implements it; a method with a
// misspelled name compiles and is never called:
//
//	var _ uxp.DatagramHandler = (*MyHandler)(nil)
type DatagramHandler interface {
	// OnNewDatagramComing is called once per datagram that arrived, on the
	// same goroutine and under the same rules as OnNewDataComing. msg is
	// only valid until OnNewDatagramComing returns. Datagrams are not
	// ordered with respect to each other or to reliable messages.
	OnNewDatagramComing(c *Conn, msg []byte)
}

// DatagramStats counts a session's unreliable datagrams.
type DatagramStats struct {
	// Sent counts datagrams handed to the network (plain and latest).
	Sent uint64
	// Received counts datagrams that arrived and were delivered.
	Received uint64
	// Superseded counts latest datagrams that arrived after a newer one on
	// their channel and were dropped.
	Superseded uint64
	// Dropped counts datagrams this side dropped before sending: they
	// waited for the congestion controller's pacer for 50 ms, or the
	// queue of 64 waiting datagrams was full (then latest-only ones go
	// first; cc_gate.go). Always zero with CongestionNone.
	Dropped uint64
}

type datagramCounters struct {
	sent, received, superseded, dropped atomic.Uint64
}

func (d *datagramCounters) snapshot() DatagramStats {
	return DatagramStats{Sent: d.sent.Load(), Received: d.received.Load(), Superseded: d.superseded.Load(), Dropped: d.dropped.Load()}
}

// latestState is the per-channel sequence state of latest datagrams, in
// both directions. Allocated on first use.
type latestState struct {
	sendSeq [256]uint32
	recvSeq [256]uint32
	seen    [256]bool
}

// MaxDatagramSize returns the largest message WriteDatagram and
// WriteDatagramLatest accept: the session's packet size (the smaller of
// the two sides' Config.KCP.MTU as path MTU discovery confirmed it, see
// Conn.PathMTU) less 31 bytes (transport
// header 9, frame type 1, AEAD tag 16, latest header 5), and, on a side
// configured for fixed FEC, 13 bytes more (shard header 10, parity length
// 2, inner frame type 1), so that every datagram fits an FEC shard. With
// the default maximum toward an IPv4 peer (1472) that is 1441 bytes (1428
// with fixed FEC) once path MTU discovery confirmed the path carries
// 1472-byte packets, and 1169 (1156) at the 1200-byte base before. With
// adaptive FEC the limit is that without FEC: while adaptive FEC adds
// parity, a datagram too large for a shard goes as its own packet, outside
// FEC (emitFrame). Safe from any goroutine.
func (c *Conn) MaxDatagramSize() int {
	return frameRoomSized(c.PathMTU(), c.ep.set.fecFixed()) - wire.LatestSize
}

// maxDatagram is the largest datagram any session of this configuration
// can take: at the configured MTU. A session's own limit
// (Conn.MaxDatagramSize) follows its negotiated and discovered packet size.
func (s *settings) maxDatagram() int { return frameRoomSized(s.mtu, s.fecFixed()) - wire.LatestSize }

// WriteDatagram queues msg as one unreliable datagram: it is sent once, at
// the next turn of the session's worker, ahead of the lanes' reliable
// traffic. The peer's DatagramHandler gets it at most once, possibly out of
// order, or not at all. A msg longer than MaxDatagramSize gets
// ErrMessageTooLarge; an empty msg sends nothing. Backpressure and errors
// after the session ended are as for Write. WriteDatagram copies msg.
func (c *Conn) WriteDatagram(msg []byte) error {
	_, err := c.write(pendDatagram, 0, 0, msg)
	return err
}

// WriteDatagramLatest is WriteDatagram for state where only the newest
// value matters: the peer drops a datagram of the channel that arrives
// after a newer one of the same channel was delivered, so the application
// never sees an older one after a newer. Channels are independent of each
// other and of lanes.
func (c *Conn) WriteDatagramLatest(channel uint8, msg []byte) error {
	_, err := c.write(pendLatest, int(channel), 0, msg)
	return err
}

// sendDatagram sends one queued datagram. It runs on the shard, in pump.
func (c *Conn) sendDatagram(kind byte, channel int, msg []byte) {
	if c.cong.gated {
		c.sendDatagramGated(kind, channel, msg) // cc_gate.go
		return
	}
	c.emitDatagram(kind, channel, msg, false)
}

// emitDatagram frames and sends one datagram; prio says it goes on the
// pacer's priority bucket (cc_gate.go dgramMayGo).
func (c *Conn) emitDatagram(kind byte, channel int, msg []byte, prio bool) {
	if kind == pendLatest {
		c.pacedExtra(wire.FrameHeaderSize+wire.LatestSize+len(msg), prio) // cc_gate.go
		if c.latest == nil {
			c.latest = new(latestState)
		}
		var h [wire.LatestSize]byte
		wire.PutLatest(h[:], uint8(channel), c.latest.sendSeq[channel])
		c.latest.sendSeq[channel]++
		c.emitFrame(wire.FrameLatest, h[:], msg, true)
	} else {
		c.pacedExtra(wire.FrameHeaderSize+len(msg), prio)
		c.emitFrame(wire.FrameDatagram, nil, msg, true)
	}
	c.dgrams.sent.Add(1)
}

// datagramInput handles an authenticated datagram frame.
func (c *Conn) datagramInput(kind byte, body []byte) {
	if kind == wire.FrameLatest {
		ch, seq, msg, ok := wire.ParseLatest(body)
		if !ok {
			c.drop(dropMalformed)
			return
		}
		body = msg
		if c.latest == nil {
			c.latest = new(latestState)
		}
		st := c.latest
		if st.seen[ch] && int32(seq-st.recvSeq[ch]) <= 0 {
			c.dgrams.superseded.Add(1)
			return
		}
		st.seen[ch], st.recvSeq[ch] = true, seq
	}
	if len(body) == 0 {
		c.drop(dropMalformed) // never sent: an empty datagram sends nothing
		return
	}
	c.dgrams.received.Add(1)
	if c.state == stateEstablished {
		c.callDatagram(body)
	}
}

func (c *Conn) callDatagram(b []byte) {
	hh := c.handlerFor()
	h, ok := hh.(DatagramHandler)
	if !ok {
		c.noteUnhandled(hh, true, 0) // unhandled.go
		return
	}
	defer c.recoverCallback("OnNewDatagramComing")
	h.OnNewDatagramComing(c, b)
}
