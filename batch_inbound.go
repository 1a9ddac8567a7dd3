package uxp

import (
	"net/netip"
	"sync"
)

// Inbound hand-off in batches. The read loop does not send each datagram
// to its shard on its own: it stages the transport datagrams of one read
// (one recvmmsg, or one datagram on the generic path) per shard, and hands
// each shard its batch with one channel operation when the read is
// dispatched (or when a batch fills). A shard therefore wakes once per
// read batch, not once per datagram.
//
// Order: a session's datagrams go to one shard, in arrival order within a
// batch, and batches reach the shard in the order they were sent, so the
// arrival order per session is kept.
//
// Bound: a shard holds at most shardQueueLen datagrams in queued batches
// (shard.queued counts them). A batch that would exceed it is dropped
// whole and each datagram counted as Overload on its session: the worker
// is saturated, and KCP retransmits.
//
// Buffers: each inbound owns its packetBuf. Whoever ends a datagram's
// life (the shard after handling it, or the read loop dropping it) puts
// the buffer back; the batch itself goes back to inboundPool, cleared,
// once its datagrams are handled.

// inboundBatch is one read's transport datagrams for one shard.
type inboundBatch struct {
	n    int
	pkts [inboundBatchLen]inbound
}

/* Implementation constants */
const (
	// inboundBatchLen is the most datagrams one hand-off carries. One read
	// can yield more (GRO runs); the read loop then hands off a full
	// batch and starts another.
	inboundBatchLen = 64
)

var inboundPool = sync.Pool{New: func() any { return new(inboundBatch) }}

func getInboundBatch() *inboundBatch { return inboundPool.Get().(*inboundBatch) }

// putInboundBatch clears b's references and returns it to the pool. Its
// packet buffers must have been put back already.
func putInboundBatch(b *inboundBatch) {
	clear(b.pkts[:b.n])
	b.n = 0
	inboundPool.Put(b)
}

// stage queues a transport datagram for c's shard; ownership of bp passes
// with it. Called on the read loop only.
func (ep *endpoint) stage(c *Conn, bp *packetBuf, n int, from netip.AddrPort) {
	i := c.shard.idx
	b := ep.staged[i]
	if b == nil {
		b = getInboundBatch()
		ep.staged[i] = b
	}
	b.pkts[b.n] = inbound{buf: bp, n: n, from: from, conn: c}
	b.n++
	if b.n == len(b.pkts) {
		ep.handOff(i)
	}
}

// flushStaged hands every shard its staged datagrams, and forgets the
// session lookup remembered. The read loop calls it after dispatching
// each read, so nothing stays staged while it blocks.
func (ep *endpoint) flushStaged() {
	for i, b := range ep.staged {
		if b != nil {
			ep.handOff(i)
		}
	}
	ep.readID, ep.readConn = 0, nil // endpoint.lookup
}

// handOff sends shard i its staged batch without blocking, or drops it
// when the shard is saturated.
func (ep *endpoint) handOff(i int) {
	b := ep.staged[i]
	ep.staged[i] = nil
	s := ep.shards[i]
	n := int64(b.n)
	if s.queued.Add(n) <= shardQueueLen {
		select {
		case s.in <- b:
			return
		default:
			// Unreachable while the bound holds (the channel has room
			// for shardQueueLen batches of at least one datagram); kept so
			// that the read loop can never block on a shard.
		}
	}
	s.queued.Add(-n)
	// The worker is saturated: drop, and let KCP retransmit. The session
	// notes it, so that its idle timer does not take the server's
	// backlog for a silent peer.
	now := ep.monoNow()
	for k := range b.n {
		p := &b.pkts[k]
		p.conn.drop(dropOverload)
		p.conn.overloadAt.Store(now)
		putPacketBuf(p.buf)
	}
	putInboundBatch(b)
}

// handleBatch handles every datagram of b and recycles it. It returns how
// many datagrams b held.
func (s *shard) handleBatch(b *inboundBatch) int {
	n := b.n
	for k := range n {
		s.handle(b.pkts[k], s.now)
	}
	s.queued.Add(-int64(n))
	putInboundBatch(b)
	return n
}

// discardBatch frees b's buffers unhandled (shutdown).
func (s *shard) discardBatch(b *inboundBatch) {
	for k := range b.n {
		putPacketBuf(b.pkts[k].buf)
	}
	s.queued.Add(-int64(b.n))
	putInboundBatch(b)
}
