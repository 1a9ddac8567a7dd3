package uxp

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// stageSeq dispatches a transport datagram for c carrying seq in its
// counter field, as the read loop would.
func stageSeq(ep *endpoint, c *Conn, seq uint64) {
	bp := getPacketBuf()
	putTransportHeader(bp.dgram(), c.id, seq, 0)
	ep.dispatch(bp, 100, netip.MustParseAddrPort("127.0.0.1:4000"))
}

// TestInboundBatchOrder checks that datagrams handed off in batches reach
// each session's shard in arrival order, one channel operation per
// (read, shard), across reads and across batches that fill up.
func TestInboundBatchOrder(t *testing.T) {
	ep, conns := newStagingEndpoint(t, 3, 7)
	want := map[uint32][]uint64{}
	rng := rand.New(rand.NewPCG(1, 2))
	seq := uint64(0)
	for read := range 20 {
		// Reads of 1 to 200 datagrams: more than inboundBatchLen for one
		// shard makes the read loop hand off a full batch mid-read.
		for range 1 + rng.IntN(200) {
			c := conns[rng.IntN(len(conns))]
			stageSeq(ep, c, seq)
			want[c.id] = append(want[c.id], seq)
			seq++
		}
		ep.flushStaged()
		for i, b := range ep.staged {
			if b != nil {
				t.Fatalf("read %d: shard %d still has a staged batch after flushStaged", read, i)
			}
		}
	}
	got := map[uint32][]uint64{}
	for _, s := range ep.shards {
		for id, seqs := range drainShard(s) {
			got[id] = append(got[id], seqs...)
		}
		if q := s.queued.Load(); q != 0 {
			t.Errorf("shard %d: %d datagrams still counted as queued after draining", s.idx, q)
		}
	}
	for _, c := range conns {
		g, w := got[c.id], want[c.id]
		if len(g) != len(w) {
			t.Fatalf("session %d: got %d datagrams, want %d", c.id, len(g), len(w))
		}
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("session %d: datagram %d is counter %d, want %d (order lost)", c.id, i, g[i], w[i])
			}
		}
	}
}

// TestInboundBatchOverload fills a shard that does not run: datagrams
// beyond shardQueueLen are dropped and counted as Overload on their
// session, nothing already queued is lost, and the count of queued
// datagrams stays within the bound.
func TestInboundBatchOverload(t *testing.T) {
	ep, conns := newStagingEndpoint(t, 1, 1)
	c := conns[0]
	s := c.shard
	const total = shardQueueLen + 1000
	for seq := range uint64(total) {
		stageSeq(ep, c, seq)
		if seq%50 == 49 {
			ep.flushStaged() // reads of 50 datagrams
		}
	}
	ep.flushStaged()
	if q := s.queued.Load(); q > shardQueueLen {
		t.Fatalf("queued %d datagrams, bound is %d", q, shardQueueLen)
	}
	got := drainShard(s)[c.id]
	dropped := c.drops.overload.Load()
	if uint64(len(got))+dropped != total {
		t.Fatalf("delivered %d + dropped %d != %d staged", len(got), dropped, total)
	}
	// Reads of 50 fill the queue to within one read of the bound.
	if len(got) < shardQueueLen-50 || dropped == 0 {
		t.Fatalf("delivered %d, dropped %d: want the queue filled to about %d and the rest dropped",
			len(got), dropped, shardQueueLen)
	}
	if s.drops.overload.Load() != dropped {
		t.Errorf("shard counted %d overload drops, session %d", s.drops.overload.Load(), dropped)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("datagram %d: counter %d after %d", i, got[i], got[i-1])
		}
	}
	if q := s.queued.Load(); q != 0 {
		t.Errorf("%d datagrams counted as queued after draining", q)
	}
	// Once drained, the shard takes datagrams again.
	stageSeq(ep, c, total)
	ep.flushStaged()
	if got := drainShard(s)[c.id]; len(got) != 1 {
		t.Fatalf("after draining: got %d datagrams, want 1", len(got))
	}
}

// TestShardShutdownFreesQueuedBatches checks that a shard closing with
// batches still queued frees them and leaves nothing counted.
func TestShardShutdownFreesQueuedBatches(t *testing.T) {
	ep, conns := newStagingEndpoint(t, 1, 2)
	for seq := range uint64(300) {
		stageSeq(ep, conns[seq%2], seq)
	}
	ep.flushStaged()
	s := ep.shards[0]
	s.shutdown()
	if len(s.in) != 0 || s.queued.Load() != 0 {
		t.Fatalf("after shutdown: %d batches queued, %d datagrams counted", len(s.in), s.queued.Load())
	}
}

// TestReadLookupPerRead checks the read loop's remembered session lookup
// (endpoint.lookup): within a read, datagrams of interleaved sessions each
// reach their own session, and a session that leaves the table mid-read
// still gets the rest of that read (as if looked up just before it left);
// from the next read on its datagrams are unknown, and a session that
// joins the table is found.
func TestReadLookupPerRead(t *testing.T) {
	ep, conns := newStagingEndpoint(t, 1, 2)
	a, b := conns[0], conns[1]
	s := ep.shards[0]
	stageSeq(ep, a, 1)
	stageSeq(ep, b, 2)
	stageSeq(ep, a, 3)
	ep.table.remove(a.id)
	stageSeq(ep, a, 4) // same read: still a's
	ep.flushStaged()
	got := drainShard(s)
	if len(got[a.id]) != 3 || len(got[b.id]) != 1 || got[b.id][0] != 2 {
		t.Fatalf("first read routed %v, want a: [1 3 4], b: [2]", got)
	}
	stageSeq(ep, a, 5) // next read: a is gone
	ep.flushStaged()
	if got := drainShard(s); len(got) != 0 {
		t.Fatalf("second read routed %v to a session that left the table", got)
	}
	if n := ep.drops.unknownSession.Load(); n != 1 {
		t.Fatalf("%d datagrams counted for an unknown session, want 1", n)
	}
	ep.table.set(a.id, a)
	stageSeq(ep, a, 6)
	ep.flushStaged()
	if got := drainShard(s); len(got[a.id]) != 1 || got[a.id][0] != 6 {
		t.Fatalf("after rejoining: routed %v, want a: [6]", got)
	}
}
