package uxp

import (
	"net/netip"

	"github.com/uxp-go/uxp/internal/sockio"
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
			if err := s.ep.sock.WriteTo(p, to); sockio.TooBig(err) {
				s.sendTooBig(id)
			} else if err != nil {
				s.ep.log.Debug("uxp: send failed", "session", id, "err", err)
			}
		}
	}
	b.Reset()
}

// sendTooBig counts a datagram of session id that the kernel refused as
// larger than the interface allows (EMSGSIZE; the socket never fragments,
// internal/sockio): on the shard, and on the session if it still exists.
// Only that datagram is lost. Path MTU discovery's probes larger than the
// interface are the usual ones (their loss is the search's answer); data
// built for a larger size before the path shrank is retransmitted by KCP
// at the new size. Rare, so the table lookup does not matter.
func (s *shard) sendTooBig(id uint32) {
	s.traffic.sendsTooBig.Add(1)
	if c := s.ep.table.get(id); c != nil {
		c.traffic.sendsTooBig.Add(1)
	}
}
