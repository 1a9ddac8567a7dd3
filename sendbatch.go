package uxp

import (
	"net/netip"
)

// The shard's send side of socket I/O. A shard seals the datagrams of one
// event (a batch of input, a wake-up, a timer run) in place into its send
// batch (s.out, a sockio.Batch) and sends them when the event ends or the
// batch fills: on Linux in as few sendmmsg calls as the kernel takes, with
// runs to one address as UDP GSO messages (s.bs, a sockio.Sender); one by
// one otherwise.

// sendRoom returns a buffer for the next datagram, at most maxDatagram
// bytes, flushing first if the batch is full. The caller fills it and
// commits.
func (s *shard) sendRoom() []byte {
	if s.out.Full() {
		s.flushSends()
		s.out.Grow()
	}
	return s.out.Room()
}

// commitSend queues the datagram just written into sendRoom's buffer.
func (s *shard) commitSend(n int, to netip.AddrPort, c *Conn) {
	s.out.Commit(n, to, c.id)
}

// flushSends sends every queued datagram: all in a few sendmmsg calls,
// with runs of datagrams to one address with one size (the last may be
// shorter) as single GSO messages, where the socket supports it; one by
// one otherwise.
func (s *shard) flushSends() {
	b := &s.out
	if s.bs != nil {
		s.bs.Flush(b)
	} else {
		for i := range b.Len() {
			p, to, id := b.Packet(i)
			if err := s.ep.sock.WriteTo(p, to); err != nil {
				s.ep.log.Debug("uxp: send failed", "session", id, "err", err)
			}
		}
	}
	b.Reset()
}
