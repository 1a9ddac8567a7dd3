package kcp

import (
	"math/rand/v2"
	"testing"
)

// TestSegmentHeapOrder checks the fork's typed heap pops segments in sn
// order, wrap-around included, and tracks duplicates.
func TestSegmentHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := uint32(0xFFFFFF00) // crosses the uint32 wrap
	h := newSegmentHeap()
	perm := rng.Perm(500)
	for _, p := range perm {
		h.push(segment{sn: base + uint32(p)})
	}
	if !h.Has(base+7) || h.Has(base+500) {
		t.Fatal("Has disagrees with the pushed set")
	}
	for i := range 500 {
		if got := h.peek().sn; got != base+uint32(i) {
			t.Fatalf("peek %d: sn %d, want %d", i, got, base+uint32(i))
		}
		if got := h.pop().sn; got != base+uint32(i) {
			t.Fatalf("pop %d: sn %d, want %d", i, got, base+uint32(i))
		}
	}
	if h.Len() != 0 || h.Has(base) {
		t.Fatal("heap not empty after popping everything")
	}
}

// TestBufferPoolRejectsForeign keeps the pool a single size class.
func TestBufferPoolRejectsForeign(t *testing.T) {
	if defaultBufferPool.Put(make([]byte, 100)) == nil {
		t.Fatal("a foreign buffer was accepted")
	}
	b := defaultBufferPool.Get()
	if len(b) != mtuLimit {
		t.Fatalf("Get returned %d bytes, want %d", len(b), mtuLimit)
	}
	if err := defaultBufferPool.Put(b[:10]); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = defaultBufferPool.Put(defaultBufferPool.Get()) }); n != 0 {
		t.Fatalf("Get/Put allocates %v times", n)
	}
}
