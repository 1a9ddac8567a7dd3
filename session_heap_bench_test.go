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

	"github.com/uxp-go/uxp/internal/kcpx"
)

// BenchmarkSessionHeap reports the live heap one established session
// holds (heapB/session): sessionHeapPairs client and server sessions on
// two endpoints (one each, as on a server), every pair having exchanged
// one message each way on lane 0, so its KCP, the trackers and the replay
// windows are in their working state (lanes=4: three lanes never used;
// datagrams: one datagram each way instead, no lane used). The
// kcp-go-default case is lanes=1 with the KCPs as kcp-go's NewKCP makes
// them (the kcpx memory tricks off): the baseline the savings are measured against,
// in the same run. Run it with -benchtime=1x; the figure is a heap delta
// after GC divided by the session count, not a timing.
func BenchmarkSessionHeap(b *testing.B) {
	for _, bc := range []struct {
		name       string
		lanes      int
		reliable   bool
		kcpDefault bool
	}{
		{"lanes=1", 1, true, false},
		{"lanes=1/kcp-go-default", 1, true, true},
		{"lanes=4", 4, true, false},
		{"datagrams", 1, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := &Config{}
			if bc.lanes > 1 {
				cfg.Lanes = make([]LaneConfig, bc.lanes)
			}
			var per float64
			for b.Loop() {
				per = sessionHeap(b, cfg, sessionHeapPairs, bc.reliable, bc.kcpDefault)
			}
			b.ReportMetric(per, "heapB/session")
		})
	}
}

// sessionHeapProfile, if set, names a file BenchmarkSessionHeap writes a
// heap profile to while its sessions are live (the last case run wins):
//
//	go test -run '^$' -bench 'SessionHeap/lanes=1$' -benchtime=1x \
//	    -memprofilerate=1 -sessionheapprofile=/tmp/heap.prof .
//	go tool pprof -sample_index=inuse_space -top uxp.test /tmp/heap.prof
var sessionHeapProfile = flag.String("sessionheapprofile", "", "write a heap profile of BenchmarkSessionHeap's live sessions to this file")

// sessionHeapPairs is how many session pairs BenchmarkSessionHeap builds.
const sessionHeapPairs = 1000

// sessionHeap builds pairs session pairs, which exchange a message (or a
// datagram) each way, and returns the live heap per session (both sides
// counted).
func sessionHeap(tb testing.TB, cfg *Config, pairs int, reliable, kcpDefault bool) float64 {
	sp := newSessionPairs(tb, cfg, kcpDefault)
	heap0, _ := settledMemory()
	msg := make([]byte, 100)
	for range pairs {
		sp.add(tb, msg, reliable)
	}
	heap1, _ := settledMemory()
	if *sessionHeapProfile != "" {
		f, err := os.Create(*sessionHeapProfile)
		require.NoError(tb, err)
		require.NoError(tb, pprof.Lookup("heap").WriteTo(f, 0))
		require.NoError(tb, f.Close())
	}
	runtime.KeepAlive(sp)
	return float64(int64(heap1)-int64(heap0)) / float64(len(sp.conns))
}

// sessionPairs is a client and a server endpoint of one shard each, on
// sinks, and the session pairs added to them: conns holds client, server,
// client, server, ... Nothing runs by itself; add drives each exchange.
type sessionPairs struct {
	cliEP, srvEP   *endpoint
	cliOut, srvOut *sinkPC
	cliAP, srvAP   netip.AddrPort
	conns          []*Conn
	tb             testing.TB // newSessionPairs's
}

// newSessionPairs makes the endpoints; with kcpDefault, their KCPs keep
// kcp-go's own allocation (the kcpx memory tricks off).
func newSessionPairs(tb testing.TB, cfg *Config, kcpDefault bool) *sessionPairs {
	tb.Helper()
	set, err := cfg.resolve()
	require.NoError(tb, err)
	sp := &sessionPairs{
		tb:    tb,
		cliAP: netip.MustParseAddrPort("10.0.0.2:5000"),
		srvAP: netip.MustParseAddrPort("10.0.0.1:4000"),
	}
	sp.cliOut = &sinkPC{addr: net.UDPAddrFromAddrPort(sp.cliAP)}
	sp.srvOut = &sinkPC{addr: net.UDPAddrFromAddrPort(sp.srvAP)}
	sp.cliEP, sp.srvEP = newEndpoint(sp.cliOut, set, 1, nopOwner{}), newEndpoint(sp.srvOut, set, 1, nopOwner{})
	for _, ep := range []*endpoint{sp.cliEP, sp.srvEP} {
		ep.shards[0].kcp = kcpx.NewFactory(kcpx.Options{Tune: ep.set.tuneKCP, NoMem: kcpDefault})
		ep.shards[0].arq.KCP = ep.shards[0].kcp
	}
	return sp
}

// add makes one more session pair, which sends msg (reliable, on lane 0,
// or as a datagram) each way, and checks that both messages were
// acknowledged. It returns the pair.
func (sp *sessionPairs) add(tb testing.TB, msg []byte, reliable bool) (cli, srv *Conn) {
	tb.Helper()
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	ck := sessionKeys{send: k1, recv: k2}
	sk := sessionKeys{send: k2, recv: k1}
	write := func(c *Conn) error {
		if reliable {
			_, err := c.Write(msg)
			return err
		}
		return c.WriteDatagram(msg)
	}
	now := time.Now()
	id := uint32(len(sp.conns)/2 + 1)
	cli, err := newConn(sp.cliEP, id, &ck, ChaCha20Poly1305, fecParams{}, sp.srvAP, true, now)
	require.NoError(tb, err)
	srv, err = newConn(sp.srvEP, id, &sk, ChaCha20Poly1305, fecParams{}, sp.cliAP, false, now)
	require.NoError(tb, err)
	cli.SetHandler(NopHandler{})
	srv.SetHandler(NopHandler{})
	require.NoError(tb, write(cli))
	cli.pump(now)
	cli.shard.flushSends()
	feed(srv, sp.cliOut.take(), sp.cliAP, now)
	require.NoError(tb, write(srv))
	srv.pump(now)
	srv.shard.flushSends()
	feed(cli, sp.srvOut.take(), sp.srvAP, now)
	cli.pump(now)
	cli.shard.flushSends()
	feed(srv, sp.cliOut.take(), sp.cliAP, now)
	srv.pump(now)
	srv.shard.flushSends()
	require.Equal(tb, stateEstablished, srv.state)
	require.Zero(tb, cli.kcpQueued.Load(), "client message not acknowledged")
	require.Zero(tb, srv.kcpQueued.Load(), "server message not acknowledged")
	sp.conns = append(sp.conns, cli, srv)
	return cli, srv
}
