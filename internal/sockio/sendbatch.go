package sockio

import "net/netip"

// Batch collects the datagrams a shard seals during one event (a batch of
// input, a wake-up, a timer run) in one contiguous buffer, to be sent when
// the event ends or the buffer fills: on Linux by a Sender in as few
// sendmmsg calls as the kernel takes, with consecutive datagrams to the
// same address with the same size as one UDP GSO message where the kernel
// has it (batch_send_linux.go, gso_linux.go); one by one through
// Socket.WriteTo otherwise.
//
// Owned by one goroutine. Every datagram is written in place in buf (Room,
// then Commit), with no copy afterwards.
type Batch struct {
	buf  []byte // len is the end of the last datagram; cap is fixed until Grow
	pkts []packet
	max  int // the largest datagram Room must fit
}

// packet locates one datagram in Batch.buf.
type packet struct {
	off, end int
	to       netip.AddrPort
	session  uint32 // for the debug log of a failed send
}

/* Implementation constants */
const (
	// sendBatchBytes is the largest batch buffer: four GSO messages of
	// 64 KiB (the most one carries), so that a bulk sender's event
	// takes one sendmmsg call per 256 KiB rather than per 64 KiB.
	sendBatchBytes = 256 << 10
	// sendBatchPackets bounds the datagrams in one batch (and the
	// messages of one sendmmsg call).
	sendBatchPackets = 256
)

// NewBatch returns a batch for datagrams of at most maxDatagram bytes. It
// starts small: most shards (every client's, a game server's) send a few
// datagrams per event. Grow doubles the buffer, up to sendBatchBytes.
func NewBatch(maxDatagram int) Batch {
	return Batch{buf: make([]byte, 0, 2*maxDatagram), max: maxDatagram}
}

// Full reports whether the batch must be sent (and Reset) before it can
// take another datagram.
func (b *Batch) Full() bool {
	return len(b.pkts) == sendBatchPackets || cap(b.buf)-len(b.buf) < b.max
}

// Grow doubles an empty batch's buffer, up to sendBatchBytes; the owner calls it
// after sending a full batch, since events that fill it tend to repeat.
func (b *Batch) Grow() {
	if c := cap(b.buf); len(b.buf) == 0 && c < sendBatchBytes {
		b.buf = make([]byte, 0, min(2*c, sendBatchBytes))
	}
}

// Room returns an empty slice with room for the next datagram (at least
// maxDatagram bytes when the batch is not Full). The caller writes the
// datagram into it and commits.
func (b *Batch) Room() []byte { return b.buf[len(b.buf):len(b.buf)] }

// Commit queues the n bytes just written into Room's slice as a datagram
// to to; session names it in the log should its send fail.
func (b *Batch) Commit(n int, to netip.AddrPort, session uint32) {
	off := len(b.buf)
	b.buf = b.buf[:off+n]
	b.pkts = append(b.pkts, packet{off: off, end: off + n, to: to, session: session})
}

// Len returns how many datagrams the batch holds.
func (b *Batch) Len() int { return len(b.pkts) }

// Size returns the bytes the batch holds.
func (b *Batch) Size() int { return len(b.buf) }

// Packet returns datagram i: its bytes (valid until Reset), its
// destination and its session.
func (b *Batch) Packet(i int) ([]byte, netip.AddrPort, uint32) {
	p := &b.pkts[i]
	return b.buf[p.off:p.end], p.to, p.session
}

// Reset empties the batch for the next event, keeping its buffers.
func (b *Batch) Reset() {
	b.pkts = b.pkts[:0]
	b.buf = b.buf[:0]
}
