package uxp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// flakyPC fails reads the way a Windows UDP socket does after an ICMP port
// unreachable (WSAECONNRESET): before each real read it returns burst
// per-datagram errors, until budget errors have been returned. It records
// when each error was returned, to show that the read loop backs off
// instead of spinning.
type flakyPC struct {
	net.PacketConn
	burst int

	mu      sync.Mutex
	budget  int
	pending int           // errors left before the next real read
	times   [][]time.Time // error times, one slice per burst
}

func newFlakyPC(pc net.PacketConn, burst, budget int) *flakyPC {
	return &flakyPC{PacketConn: pc, burst: burst, budget: budget, pending: burst}
}

func (f *flakyPC) ReadFrom(b []byte) (int, net.Addr, error) {
	f.mu.Lock()
	if f.pending > 0 && f.budget > 0 {
		if f.pending == f.burst {
			f.times = append(f.times, nil)
		}
		f.pending--
		f.budget--
		f.times[len(f.times)-1] = append(f.times[len(f.times)-1], time.Now())
		f.mu.Unlock()
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Addr: f.LocalAddr(),
			Err: os.NewSyscallError("wsarecvfrom", syscall.ECONNRESET)}
	}
	f.mu.Unlock()
	n, addr, err := f.PacketConn.ReadFrom(b)
	f.mu.Lock()
	f.pending = f.burst
	f.mu.Unlock()
	return n, addr, err
}

// errorsReturned is the number of errors returned, and the shortest time
// between two consecutive errors of one burst.
func (f *flakyPC) errorsReturned() (n int, minGap time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	minGap = time.Hour
	for _, ts := range f.times {
		n += len(ts)
		for i := 1; i < len(ts); i++ {
			minGap = min(minGap, ts[i].Sub(ts[i-1]))
		}
	}
	return n, minGap
}

// TestReadErrorsSkipped covers the per-datagram read path, the one every
// platform without recvmmsg uses (internal/sockio/batch_other.go) and Linux uses for a
// PacketConn that is not a *net.UDPConn: a read error that is neither a
// timeout nor net.ErrClosed (Windows' WSAECONNRESET after an ICMP port
// unreachable) is skipped after a 1 ms pause, so that it neither ends the
// read loop nor makes it spin. Both ends get bursts of such errors before
// every datagram; the handshake completes, every message is echoed intact
// and in order, and no session or endpoint closes. Close still ends the
// loop.
func TestReadErrorsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			burst  = 3
			budget = 300
			n      = 50
		)
		nw := netsim.NewNetwork(71)
		t.Cleanup(func() { nw.Close() })
		keys := testKeys(t)
		rawSrv, err := nw.Listen("10.0.0.1:4000")
		require.NoError(t, err)
		rawCli, err := nw.Listen("10.0.0.2:5000")
		require.NoError(t, err)
		srvPC, cliPC := newFlakyPC(rawSrv, burst, budget), newFlakyPC(rawCli, burst, budget)

		srvH := &recordServer{newConn: func() *recordConn { r := newRecordConn(); r.echo = true; return r }}
		srv, err := NewServer(srvPC, srvH, &Config{PrivateKey: keys.Private})
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		cliH := newRecordConn()
		cli, err := NewClient(cliPC, rawSrv.LocalAddr(), cliH, &Config{ServerPublicKey: keys.Public})
		require.NoError(t, err)
		require.NoError(t, cli.Start(context.Background()))

		for i := range n {
			writeRetry(t, cli.Conn(), testMessage(i, 10+i*20))
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Second)

		_, echoed, closed := cliH.snapshot()
		require.Len(t, echoed, n, "every message is echoed despite the read errors")
		for i, m := range echoed {
			require.True(t, bytes.Equal(testMessage(i, 10+i*20), m), "echoed message %d", i)
		}
		require.Empty(t, closed, "no client session closed")
		conns, connClosed, srvClosed := srvH.counts()
		require.Equal(t, 1, conns)
		require.Zero(t, connClosed, "no server session closed")
		require.Zero(t, srvClosed, "the server's read loop did not end")
		for name, pc := range map[string]*flakyPC{"server": srvPC, "client": cliPC} {
			got, minGap := pc.errorsReturned()
			require.Greater(t, got, 2*burst, "%s: read errors were returned", name)
			require.GreaterOrEqual(t, minGap, time.Millisecond, "%s: the loop pauses between errors instead of spinning", name)
		}

		require.NoError(t, cli.Close())
		require.NoError(t, srv.Close())
		_, _, srvClosed = srvH.counts()
		require.Equal(t, 1, srvClosed, "Close ends the server")
	})
}

// TestDispatchByOwner: the read loop hands each message type to its
// endpoint's owner (endpointOwner), and an owner that takes no such
// message leaves it counted as malformed, as the nil-checked callbacks
// did: a server takes initiations (into its handshake queue), clients and
// Dialers responses and control messages (and, with no handshake in
// progress, count them malformed themselves), and every owner counts an
// unknown session.
func TestDispatchByOwner(t *testing.T) {
	kp := testKeys(t)
	srvAddr := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000}
	from := netip.MustParseAddrPort("192.0.2.9:5000")
	var srv *Server
	owners := map[string]func(t *testing.T) *endpoint{
		"server": func(t *testing.T) *endpoint {
			s, err := NewServer(nullPacketConn{}, nil, &Config{PrivateKey: kp.Private})
			require.NoError(t, err)
			srv = s
			return s.ep
		},
		"client": func(t *testing.T) *endpoint {
			c, err := NewClient(nullPacketConn{}, srvAddr, nil, &Config{ServerPublicKey: kp.Public})
			require.NoError(t, err)
			return c.ep
		},
		"dialer": func(t *testing.T) *endpoint {
			d, err := NewDialer(nullPacketConn{}, &Config{ServerPublicKey: kp.Public})
			require.NoError(t, err)
			return d.ep
		},
		"test endpoint": func(t *testing.T) *endpoint {
			set, err := (&Config{}).resolve()
			require.NoError(t, err)
			return newEndpoint(nullPacketConn{}, set, 1, nopOwner{})
		},
	}
	tests := []struct {
		msg       byte
		malformed map[string]bool // by owner: counted as malformed
	}{
		{msgInitiation, map[string]bool{"client": true, "dialer": true, "test endpoint": true}},
		// The client's attempt and the Dialer take them and find no
		// handshake in progress.
		{msgResponse, map[string]bool{"server": true, "client": true, "dialer": true, "test endpoint": true}},
		{msgCookieReply, map[string]bool{"server": true, "client": true, "dialer": true, "test endpoint": true}},
		{0x7f, map[string]bool{"server": true, "client": true, "dialer": true, "test endpoint": true}},
	}
	for name, newEP := range owners {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/type %d", name, tt.msg), func(t *testing.T) {
				ep := newEP(t)
				bp := getPacketBuf()
				bp.dgram()[0] = tt.msg
				ep.dispatch(bp, 200, from)
				var want uint64
				if tt.malformed[name] {
					want = 1
				}
				require.Equal(t, want, ep.drops.malformed.Load())
				if name == "server" && tt.msg == msgInitiation {
					require.Len(t, srv.hsQueue, 1, "queued for the handshake loop")
				}
			})
		}
		t.Run(name+"/unknown session", func(t *testing.T) {
			ep := newEP(t)
			bp := getPacketBuf()
			putTransportHeader(bp.dgram(), 42, 0, 0)
			ep.dispatch(bp, minTransportSize+8, from)
			require.EqualValues(t, 1, ep.drops.unknownSession.Load())
			require.Zero(t, ep.drops.malformed.Load())
		})
	}
}
