package uxp

import (
	"net/netip"
	"testing"

	"github.com/uxp-go/uxp/internal/replay"
)

// TestHotPathZeroAlloc holds the per-packet path to zero allocations in
// steady state: the same work as the hot-path benchmarks, counted with
// testing.AllocsPerRun so that a regression fails the ordinary test run.
func TestHotPathZeroAlloc(t *testing.T) {
	if hotPathRace {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	check := func(name string, f func()) {
		t.Helper()
		for range 50 {
			f() // warm up pools and slices
		}
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs per packet, want 0", name, n)
		}
	}

	t.Run("round", func(t *testing.T) {
		for _, size := range []int{64, 1024} {
			r := newBenchRound(t, size)
			check("send->receive round", func() { r.round(t) })
			if r.got == 0 {
				t.Fatal("nothing delivered")
			}
		}
	})

	t.Run("routing", func(t *testing.T) {
		set, err := (&Config{}).resolve()
		if err != nil {
			t.Fatal(err)
		}
		ep := newEndpoint(nullPacketConn{}, set, 2)
		c := &Conn{id: 9, ep: ep, heapIndex: -1}
		c.shard = ep.shardFor(c.id)
		ep.table.set(c.id, c)
		from := netip.MustParseAddrPort("127.0.0.1:4000")
		var ctr uint64
		check("routing", func() {
			bp := getPacketBuf()
			putTransportHeader(bp[:], c.id, ctr, 0)
			ctr++
			ep.dispatch(bp, 200, from)
			p := <-c.shard.in
			putPacketBuf(p.buf)
		})
	})

	t.Run("replay", func(t *testing.T) {
		var w replay.Window
		var ctr uint64
		check("replay window", func() {
			if w.Check(ctr) {
				w.Accept(ctr)
			}
			ctr++
		})
	})
}
