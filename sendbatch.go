package uxp

import (
	"net/netip"
)

// sendBatch collects the datagrams a shard seals during one event (a batch
// of input, a wake-up, a timer run) in one contiguous buffer, and sends
// them when the event ends or the buffer fills: on Linux in as few
// sendmmsg calls as the kernel takes, with consecutive datagrams to the
// same address with the same size as one UDP GSO message where the kernel
// has it (batch_send_linux.go, gso_linux.go); one by one otherwise.
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

// flushSends sends every queued datagram: all in a few sendmmsg calls,
// with runs of datagrams to one address with one size (the last may be
// shorter) as single GSO messages, where the socket supports it
// (batch_send_linux.go); one by one otherwise.
func (s *shard) flushSends() {
	b := &s.out
	if s.bs != nil {
		s.bs.flush(s.ep, b)
	} else {
		for _, p := range b.pkts {
			if err := s.ep.writeTo(b.buf[p.off:p.end], p.to); err != nil {
				s.ep.log.Debug("uxp: send failed", "session", p.conn.id, "err", err)
			}
		}
	}
	for i := range b.pkts {
		b.pkts[i].conn = nil
	}
	b.pkts = b.pkts[:0]
	b.buf = b.buf[:0]
}
