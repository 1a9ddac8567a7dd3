package uxp

import (
	"net/netip"
	"testing"

	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/internal/replay"
)

// TestHotPathZeroAlloc holds uxp's per-packet code to zero allocations in
// steady state (seal/open, header codec, replay window, routing) and the
// full send->receive round to kcp-go's own allocations: the same work as
// the hot-path benchmarks, counted with testing.AllocsPerRun so that a
// regression fails the ordinary test run.
func TestHotPathZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	measure := func(f func()) float64 {
		for range 50 {
			f() // warm up pools and slices
		}
		return testing.AllocsPerRun(200, f)
	}
	check := func(name string, f func()) {
		t.Helper()
		if n := measure(f); n != 0 {
			t.Errorf("%s: %v allocs per packet, want 0", name, n)
		}
	}

	t.Run("round", func(t *testing.T) {
		// The round goes through kcp-go (v5.7.6), a required dependency,
		// which allocates on its own: for one message and its ACK, its
		// receive heap boxes the segment in interface{} twice
		// (container/heap Push and Pop in parse_data) and its sync.Pool
		// boxes a []byte header twice (bufferPool.Put from
		// recycleSegment, on each side). uxp's own part of the round adds
		// nothing: the bound is exactly kcp-go's count.
		const kcpGoAllocsPerRound = 4
		for _, size := range []int{64, 1024} {
			r := newBenchRound(t, size)
			if n := measure(func() { r.round(t) }); n > kcpGoAllocsPerRound {
				t.Errorf("send->receive round of %d bytes: %v allocs, want at most kcp-go's %d", size, n, kcpGoAllocsPerRound)
			}
			if r.got == 0 {
				t.Fatal("nothing delivered")
			}
		}
	})

	t.Run("seal-open", func(t *testing.T) {
		var key [ucrypto.KeySize]byte
		key[0] = 1
		send, err := ucrypto.NewAEAD(ChaCha20Poly1305, &key)
		if err != nil {
			t.Fatal(err)
		}
		recv, _ := ucrypto.NewAEAD(ChaCha20Poly1305, &key)
		buf := make([]byte, transportHeaderSize+frameHeaderSize+1024, maxDatagram)
		var ctr uint64
		check("header, seal, parse, open", func() {
			b := buf[:transportHeaderSize+frameHeaderSize+1024]
			putTransportHeader(b, 7, ctr, 0)
			pkt := send.Seal(b[:transportHeaderSize], ctr, b[transportHeaderSize:], b[:transportHeaderSize])
			if _, ok := parseTransportHeader(pkt); !ok {
				t.Fatal("header rejected")
			}
			if _, err := recv.Open(pkt[transportHeaderSize:transportHeaderSize], ctr, pkt[transportHeaderSize:], pkt[:transportHeaderSize]); err != nil {
				t.Fatal(err)
			}
			ctr++
		})
	})

	t.Run("routing", func(t *testing.T) {
		set, err := (&Config{}).resolve()
		if err != nil {
			t.Fatal(err)
		}
		ep := newEndpoint(nullPacketConn{}, set, 2, nopOwner{})
		c := &Conn{connFixed: connFixed{id: 9, ep: ep}, connShard: connShard{heapIndex: -1}}
		c.shard = ep.shardFor(c.id)
		ep.table.set(c.id, c)
		from := netip.MustParseAddrPort("127.0.0.1:4000")
		var ctr uint64
		check("routing", func() {
			bp := getPacketBuf()
			putTransportHeader(bp.dgram(), c.id, ctr, 0)
			ctr++
			ep.dispatch(bp, 200, from)
			ep.flushStaged()
			c.shard.discardBatch(<-c.shard.in)
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
