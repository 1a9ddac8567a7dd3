package uxp

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkSessionHeap reports the live heap one established session
// holds (heapB/session): sessionHeapPairs client and server sessions on
// two endpoints (one each, as on a server), every pair having exchanged
// one message each way on lane 0, so its KCP, the trackers and the replay
// windows are in their working state (lanes=4: three lanes never used;
// datagrams: one datagram each way instead, no lane used). Run it with
// -benchtime=1x; the figure is a heap delta after GC divided by the
// session count, not a timing.
func BenchmarkSessionHeap(b *testing.B) {
	for _, bc := range []struct {
		name     string
		lanes    int
		reliable bool
	}{{"lanes=1", 1, true}, {"lanes=4", 4, true}, {"datagrams", 1, false}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := &Config{}
			if bc.lanes > 1 {
				cfg.Lanes = make([]LaneConfig, bc.lanes)
			}
			var per float64
			for b.Loop() {
				per = sessionHeap(b, cfg, sessionHeapPairs, bc.reliable)
			}
			b.ReportMetric(per, "heapB/session")
		})
	}
}

// sessionHeapProfile, if set, names a file BenchmarkSessionHeap writes a
// heap profile to while its sessions are live (the last case run wins):
//
//	go test -run '^$' -bench 'SessionHeap/lanes=1' -benchtime=1x \
//	    -memprofilerate=1 -sessionheapprofile=/tmp/heap.prof .
//	go tool pprof -sample_index=inuse_space -top uxp.test /tmp/heap.prof
var sessionHeapProfile = flag.String("sessionheapprofile", "", "write a heap profile of BenchmarkSessionHeap's live sessions to this file")

// sessionHeapPairs is how many session pairs BenchmarkSessionHeap builds.
const sessionHeapPairs = 1000

// sessionHeap builds pairs session pairs, which exchange a message (or a
// datagram) each way, and returns the live heap per session (both sides
// counted).
func sessionHeap(tb testing.TB, cfg *Config, pairs int, reliable bool) float64 {
	set, err := cfg.resolve()
	require.NoError(tb, err)
	cliAP := netip.MustParseAddrPort("10.0.0.2:5000")
	srvAP := netip.MustParseAddrPort("10.0.0.1:4000")
	cliOut := &sinkPC{addr: net.UDPAddrFromAddrPort(cliAP)}
	srvOut := &sinkPC{addr: net.UDPAddrFromAddrPort(srvAP)}
	cliEP, srvEP := newEndpoint(cliOut, set, 1), newEndpoint(srvOut, set, 1)
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	ck := sessionKeys{send: k1, recv: k2}
	sk := sessionKeys{send: k2, recv: k1}
	msg := make([]byte, 100)
	write := func(c *Conn) error {
		if reliable {
			_, err := c.Write(msg)
			return err
		}
		return c.WriteDatagram(msg)
	}
	conns := make([]*Conn, 0, 2*pairs)
	heap0, _ := settledMemory()
	now := time.Now()
	for i := range pairs {
		id := uint32(i + 1)
		cli, err := newConn(cliEP, id, &ck, ChaCha20Poly1305, fecParams{}, srvAP, true, now)
		require.NoError(tb, err)
		srv, err := newConn(srvEP, id, &sk, ChaCha20Poly1305, fecParams{}, cliAP, false, now)
		require.NoError(tb, err)
		cli.SetHandler(NopHandler{})
		srv.SetHandler(NopHandler{})
		require.NoError(tb, write(cli))
		cli.pump(now)
		cli.shard.flushSends()
		feed(srv, cliOut.take(), cliAP, now)
		require.NoError(tb, write(srv))
		srv.pump(now)
		srv.shard.flushSends()
		feed(cli, srvOut.take(), srvAP, now)
		cli.pump(now)
		cli.shard.flushSends()
		feed(srv, cliOut.take(), cliAP, now)
		srv.pump(now)
		srv.shard.flushSends()
		require.Equal(tb, stateEstablished, srv.state)
		require.Zero(tb, cli.kcpQueued.Load(), "client message not acknowledged")
		require.Zero(tb, srv.kcpQueued.Load(), "server message not acknowledged")
		conns = append(conns, cli, srv)
	}
	heap1, _ := settledMemory()
	if *sessionHeapProfile != "" {
		f, err := os.Create(*sessionHeapProfile)
		require.NoError(tb, err)
		require.NoError(tb, pprof.Lookup("heap").WriteTo(f, 0))
		require.NoError(tb, f.Close())
	}
	runtime.KeepAlive(conns)
	runtime.KeepAlive(cliEP)
	runtime.KeepAlive(srvEP)
	return float64(int64(heap1)-int64(heap0)) / float64(len(conns))
}
