package uxp

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// startUDPServer runs a server on loopback UDP.
func startUDPServer(t testing.TB, h ServerHandler, cfg *Config) (*Server, KeyPair) {
	t.Helper()
	kp := testKeys(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg = cfg.Clone()
	cfg.PrivateKey = kp.Private
	srv, err := NewServer(pc, h, cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	return srv, kp
}

// countingConn counts messages and signals when want have arrived.
type countingConn struct {
	NopHandler
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (h *countingConn) OnNewDataComing(c *Conn, data []byte) {
	if h.n.Add(1) == h.want {
		close(h.done)
	}
}

// TestEchoManyClients serves 1000 concurrent clients from one server
// socket with an echo handler that writes inside OnNewDataComing.
func TestEchoManyClients(t *testing.T) {
	const clients, msgs = 1000, 5
	srv, kp := startUDPServer(t, echoServer{}, nil)
	addr := srv.Addr().String()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	sem := make(chan struct{}, 100) // dial in waves so the test machine's socket buffers keep up
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			h := &countingConn{want: msgs, done: make(chan struct{})}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// All 1000 clients share 127.0.0.1. If the server falls behind
			// (a loaded CI machine under -race), it enters cookie mode and
			// rate-limits that one source to handshakeRate a second, as it
			// would a carrier-grade NAT address under a flood; the clients
			// then need longer than the default 5 s to all get in. The
			// handshake timeout matches the test's own deadline.
			cl, err := Dial(ctx, addr, h, &Config{ServerPublicKey: kp.Public, HandshakeTimeout: 20 * time.Second})
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			defer cl.Close()
			for j := range msgs {
				if _, err := cl.Conn().Write(fmt.Appendf(nil, "client %d message %d", i, j)); err != nil {
					errs <- err
					return
				}
			}
			select {
			case <-h.done:
			case <-ctx.Done():
				errs <- fmt.Errorf("client %d: got %d of %d echoes", i, h.n.Load(), msgs)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := srv.Stats()
	require.EqualValues(t, clients, st.SessionsAccepted)
	require.EqualValues(t, clients*msgs, st.MessagesReceived)
	require.EqualValues(t, clients*msgs, st.MessagesSent)
}

// TestConnectCloseCyclesNoLeak connects and closes 200 times, then closes
// the server: the goroutine count must return to its baseline.
func TestConnectCloseCyclesNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	srvH := &recordServer{newConn: func() *recordConn { r := newRecordConn(); r.echo = true; return r }}
	srv, kp := startUDPServer(t, srvH, nil)
	for i := range 200 {
		h := &countingConn{want: 1, done: make(chan struct{})}
		cl, err := Dial(context.Background(), srv.Addr().String(), h, &Config{ServerPublicKey: kp.Public})
		require.NoError(t, err, "cycle %d", i)
		_, err = cl.Conn().Write([]byte("ping"))
		require.NoError(t, err)
		<-h.done
		require.NoError(t, cl.Close())
	}
	require.NoError(t, srv.Close())
	conns, connClosed, closed := srvH.counts()
	require.Equal(t, 200, conns)
	require.Equal(t, 200, connClosed, "every announced session reports its close once")
	require.Equal(t, 1, closed)
	require.Zero(t, srv.Stats().Sessions)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), base, "goroutines leaked")
}

// TestCallbackPanicClosesOnlyThatSession: a panicking handler closes its own
// session with a CallbackPanicError; the other session keeps working.
func TestCallbackPanicClosesOnlyThatSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 5, nil, nil, false)
		// The server announces a session when the client's first packet
		// confirms it, so the two sessions may be announced in either
		// order: pick the buggy handler by the client's address.
		buggy := p.cliPC.LocalAddr().String()
		p.srvH.newConn = func() *recordConn {
			r := newRecordConn()
			r.onData = func(c *Conn, data []byte) {
				if c.RemoteAddr().String() == buggy {
					panic("handler bug")
				}
				if _, err := c.Write(data); err != nil {
					panic(fmt.Sprintf("echo write: %v", err))
				}
			}
			return r
		}
		require.NoError(t, p.cli.Start(context.Background()))
		pc2, err := p.net.Listen("10.0.0.3:5000")
		require.NoError(t, err)
		h2 := newRecordConn()
		cl2, err := NewClient(pc2, p.srvPC.LocalAddr(), h2, p.cliCfg)
		require.NoError(t, err)
		defer cl2.Close()
		require.NoError(t, cl2.Start(context.Background()))

		_, err = p.cli.Conn().Write([]byte("boom"))
		require.NoError(t, err)
		<-p.cli.Conn().Done()
		_, _, closed := p.cliH.snapshot()
		require.Len(t, closed, 1)
		require.ErrorIs(t, closed[0], ErrPeerClosed)
		// The server sends its close packet before it runs OnClosed, so
		// the client can finish first: let the server's shard settle.
		synctest.Wait()
		p.srvH.mu.Lock()
		var bugH *recordConn
		for i, c := range p.srvH.conns {
			if c.RemoteAddr().String() == buggy {
				bugH = p.srvH.handlers[i]
			}
		}
		p.srvH.mu.Unlock()
		require.NotNil(t, bugH)
		_, _, srvClosed := bugH.snapshot()
		require.Len(t, srvClosed, 1)
		var pe *CallbackPanicError
		require.ErrorAs(t, srvClosed[0], &pe)
		require.Equal(t, "OnNewDataComing", pe.Callback)
		require.ErrorIs(t, srvClosed[0], net.ErrClosed)

		_, err = cl2.Conn().Write([]byte("fine"))
		require.NoError(t, err)
		<-h2.gotMsg
		_, msgs, _ := h2.snapshot()
		require.Equal(t, "fine", string(msgs[0]))
	})
}

func TestWriteErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{MaxMessageSize: 4000, SendQueueBytes: 10000}
		p := newSimPair(t, 6, cfg, cfg, true)
		conn := p.cli.Conn()
		_, err := conn.Write(make([]byte, 4001))
		require.ErrorIs(t, err, ErrMessageTooLarge)
		n, err := conn.Write(nil)
		require.NoError(t, err)
		require.Zero(t, n)

		// With the server unreachable nothing is acknowledged, so the queue
		// fills and Write refuses instead of blocking.
		p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Blackhole: true})
		var blocked error
		for range 10 {
			if _, err := conn.Write(make([]byte, 3000)); err != nil {
				blocked = err
				break
			}
		}
		require.ErrorIs(t, blocked, ErrWouldBlock)
		require.LessOrEqual(t, conn.Stats().SendQueueBytes, 10000)

		require.NoError(t, conn.Close())
		require.NoError(t, conn.Close(), "Close is idempotent")
		_, err = conn.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
		<-conn.Done()
		_, err = conn.Write([]byte("x"))
		require.ErrorIs(t, err, ErrConnClosed)
		_, _, closed := p.cliH.snapshot()
		require.Len(t, closed, 1)
		require.ErrorIs(t, closed[0], ErrConnClosed)
	})
}

// TestCloseFromCallback closes the session from inside OnNewDataComing.
func TestCloseFromCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 7, nil, nil, false)
		p.srvH.newConn = func() *recordConn {
			r := newRecordConn()
			r.onData = func(c *Conn, _ []byte) {
				c.Write([]byte("bye"))
				c.Close()
			}
			return r
		}
		require.NoError(t, p.cli.Start(context.Background()))
		_, err := p.cli.Conn().Write([]byte("hi"))
		require.NoError(t, err)
		<-p.cli.Conn().Done()
		_, msgs, closed := p.cliH.snapshot()
		require.Equal(t, [][]byte{[]byte("bye")}, msgs, "data written before Close is delivered")
		require.Len(t, closed, 1)
		require.ErrorIs(t, closed[0], ErrPeerClosed)
	})
}

func TestServerCloseEndsSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 8, nil, nil, true)
		synctest.Wait()
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, p.srv.Close())
		require.NoError(t, p.srv.Close(), "Close is idempotent")
		<-p.cli.Conn().Done()
		_, _, closed := p.cliH.snapshot()
		require.Len(t, closed, 1)
		require.ErrorIs(t, closed[0], ErrPeerClosed)
		require.Equal(t, []error{ErrServerClosed}, p.srvH.connClose)
		require.Equal(t, []error{nil}, p.srvH.closed)
		require.ErrorIs(t, p.srv.Start(), ErrServerClosed)
	})
}

func TestHalfOpenExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The client's packets after the handshake never arrive: the
		// server must forget the half-open session silently.
		p := newSimPair(t, 9, &Config{HandshakeTimeout: time.Second}, nil, false)
		p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Drop: func(b []byte) bool { return b[0] == msgTransport }})
		require.NoError(t, p.cli.Start(context.Background()))
		synctest.Wait()
		require.Equal(t, 1, p.srv.Stats().HalfOpen)
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		st := p.srv.Stats()
		require.Zero(t, st.HalfOpen)
		require.Zero(t, st.SessionsAccepted)
		conns, connClosed, _ := p.srvH.counts()
		require.Zero(t, conns+connClosed)
	})
}
