package uxp

import (
	"net/netip"
)

// sendBatch collects the datagrams a shard seals during one event (a batch
// of input, a wake-up, a timer run) in one contiguous buffer, and sends
// them when the event ends or the buffer fills. Consecutive datagrams to
// the same address with the same size then leave in one system call with
// UDP generic segmentation offload where the kernel has it (gso_linux.go),
// and one by one otherwise.
//
// Owned by the shard goroutine. Every datagram is sealed in place in buf,
// with no copy after sealing.
type sendBatch struct {
	buf  []byte // len is the end of the last datagram; cap is fixed
	pkts []pktRef
}

// pktRef locates one sealed datagram in sendBatch.buf.
type pktRef struct {
	off, end int
	to       netip.AddrPort
	conn     *Conn // for the debug log of a failed send
}

/* Implementation constants */
const (
	// sendBatchBytes is the batch buffer: one GSO send carries at most
	// 64 KiB of UDP payload.
	sendBatchBytes = 64 << 10
	// sendBatchPackets bounds the datagrams in one batch; Linux accepts at
	// most 64 GSO segments per send on older kernels.
	sendBatchPackets = 64
)

// newSendBatch starts small: most shards (every client's, a game
// server's) send a few datagrams per event. The buffer doubles, up to
// sendBatchBytes, each time an event fills it.
func newSendBatch() sendBatch {
	return sendBatch{buf: make([]byte, 0, 2*maxDatagram)}
}

// sendRoom returns a buffer for the next datagram, at most maxDatagram
// bytes, flushing first if the batch is full. The caller fills it and
// commits.
func (s *shard) sendRoom() []byte {
	b := &s.out
	if len(b.pkts) == sendBatchPackets || cap(b.buf)-len(b.buf) < maxDatagram {
		s.flushSends()
		if c := cap(b.buf); c < sendBatchBytes {
			b.buf = make([]byte, 0, min(2*c, sendBatchBytes))
		}
	}
	return b.buf[len(b.buf):len(b.buf)]
}

// commitSend queues the datagram just written into sendRoom's buffer.
func (s *shard) commitSend(n int, to netip.AddrPort, c *Conn) {
	b := &s.out
	off := len(b.buf)
	b.buf = b.buf[:off+n]
	b.pkts = append(b.pkts, pktRef{off: off, end: off + n, to: to, conn: c})
}

// flushSends sends every queued datagram. Runs of datagrams to one address
// with one size (the last may be shorter) go out in a single GSO send when
// the socket supports it.
func (s *shard) flushSends() {
	b := &s.out
	ep := s.ep
	g := s.gso
	if g != nil && ep.gsoOff.Load() {
		g = nil
	}
	for i := 0; i < len(b.pkts); {
		p := b.pkts[i]
		j := i + 1
		if g != nil {
			size := p.end - p.off
			for j < len(b.pkts) && b.pkts[j].to == p.to && b.pkts[j-1].end-b.pkts[j-1].off == size &&
				b.pkts[j].off == b.pkts[j-1].end && b.pkts[j].end-b.pkts[j].off <= size {
				j++
			}
			if j-i > 1 {
				err := g.send(b.buf[p.off:b.pkts[j-1].end], size, p.to)
				if err == nil {
					i = j
					continue
				}
				if !gsoUnsupported(err) {
					ep.log.Debug("uxp: send failed", "session", p.conn.id, "err", err)
					i = j
					continue
				}
				// The kernel or the device refused GSO: stop using it on
				// this socket and send these one by one.
				ep.gsoOff.Store(true)
				g = nil
				j = i + 1
			}
		}
		if err := ep.writeTo(b.buf[p.off:p.end], p.to); err != nil {
			ep.log.Debug("uxp: send failed", "session", p.conn.id, "err", err)
		}
		i = j
	}
	for i := range b.pkts {
		b.pkts[i].conn = nil
	}
	b.pkts = b.pkts[:0]
	b.buf = b.buf[:0]
}
