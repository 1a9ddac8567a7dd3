package uxp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/uxp-go/uxp/internal/netsim"
)

// streamPair is a Listener and a dialled StreamConn on a netsim network,
// with the accepted server side. Build it inside a synctest bubble.
type streamPair struct {
	net      *netsim.Network
	ln       *Listener
	cli, srv *StreamConn
}

func newStreamPair(t testing.TB, seed uint64, imp netsim.Impairment, srvCfg, cliCfg *Config) *streamPair {
	t.Helper()
	kp := testKeys(t)
	p := &streamPair{net: netsim.NewNetwork(seed)}
	t.Cleanup(func() { p.net.Close() })
	p.net.SetDefault(imp)
	srvCfg = srvCfg.Clone()
	srvCfg.PrivateKey = kp.Private
	cliCfg = cliCfg.Clone()
	cliCfg.ServerPublicKey = kp.Public
	srvPC, err := p.net.Listen("10.0.0.1:4000")
	require.NoError(t, err)
	cliPC, err := p.net.Listen("10.0.0.2:5000")
	require.NoError(t, err)
	p.ln, err = Listen(srvPC, srvCfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.ln.Close() })
	p.cli, err = DialConnOver(context.Background(), cliPC, srvPC.LocalAddr(), cliCfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.cli.Close() })
	c, err := p.ln.Accept()
	require.NoError(t, err)
	p.srv = c.(*StreamConn)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// loopbackStreamPair is the same on real 127.0.0.1 sockets.
func loopbackStreamPair(t testing.TB, cfg *Config) (ln *Listener, cli, srv net.Conn) {
	t.Helper()
	kp := testKeys(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srvCfg := cfg.Clone()
	srvCfg.PrivateKey = kp.Private
	ln, err = Listen(pc, srvCfg)
	require.NoError(t, err)
	cliCfg := cfg.Clone()
	cliCfg.ServerPublicKey = kp.Public
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err = DialConn(ctx, ln.Addr().String(), cliCfg)
	if err != nil {
		ln.Close()
		require.NoError(t, err)
	}
	srv, err = ln.Accept()
	if err != nil {
		cli.Close()
		ln.Close()
		require.NoError(t, err)
	}
	return ln, cli, srv
}

// TestStreamNettest runs x/net's net.Conn conformance suite over real
// loopback sockets, in both directions (dialled side first and accepted
// side first).
func TestStreamNettest(t *testing.T) {
	for _, dialerFirst := range []bool{true, false} {
		name := "DialerFirst"
		if !dialerFirst {
			name = "AcceptedFirst"
		}
		t.Run(name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				ln, cli, srv := loopbackStreamPair(t, nil)
				stop = func() {
					cli.Close()
					srv.Close()
					ln.Close()
				}
				if dialerFirst {
					return cli, srv, stop, nil
				}
				return srv, cli, stop, nil
			})
		})
	}
}

// TestStreamAddrs checks LocalAddr and RemoteAddr on both sides: each
// side's local address is the other's remote address.
func TestStreamAddrs(t *testing.T) {
	ln, cli, srv := loopbackStreamPair(t, nil)
	defer ln.Close()
	defer cli.Close()
	require.Equal(t, ln.Addr().String(), cli.RemoteAddr().String())
	require.Equal(t, ln.Addr().String(), srv.LocalAddr().String())
	require.Equal(t, cli.LocalAddr().String(), srv.RemoteAddr().String())
	require.Equal(t, "udp", cli.LocalAddr().Network())
	require.Contains(t, cli.LocalAddr().String(), "127.0.0.1:")
}

// TestStreamPartialReadAndEOF: a Read with a small buffer returns part of
// a write and the rest stays for the next Read; after the peer's Close the
// reader gets everything written, then io.EOF (repeatedly), while the
// closing side's own calls fail with net.ErrClosed.
func TestStreamPartialReadAndEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 1, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		msg := testMessage(1, 100_000)
		n, err := p.cli.Write(msg)
		require.NoError(t, err)
		require.Equal(t, len(msg), n)

		small := make([]byte, 10)
		n, err = p.srv.Read(small)
		require.NoError(t, err)
		require.Equal(t, 10, n)
		require.Equal(t, msg[:10], small)

		require.NoError(t, p.cli.Close())
		rest, err := io.ReadAll(p.srv) // ReadAll stops at io.EOF
		require.NoError(t, err)
		require.Equal(t, msg[10:], rest)
		n, err = p.srv.Read(small)
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)

		_, err = p.cli.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = p.cli.Read(small)
		require.ErrorIs(t, err, net.ErrClosed)
		// Writing to a peer that left fails with the session's error.
		_, err = p.srv.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

// TestStreamDeadlines: a Read deadline fires in (virtual) time with a
// net.Error whose Timeout is true, and the stream stays usable; a
// deadline that is cleared no longer applies.
func TestStreamDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 2, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		start := time.Now()
		require.NoError(t, p.srv.SetReadDeadline(start.Add(300*time.Millisecond)))
		_, err := p.srv.Read(make([]byte, 10))
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Equal(t, 300*time.Millisecond, time.Since(start))

		require.NoError(t, p.srv.SetReadDeadline(time.Time{}))
		go func() {
			time.Sleep(time.Second)
			p.cli.Write([]byte("late"))
		}()
		b := make([]byte, 10)
		n, err := p.srv.Read(b)
		require.NoError(t, err)
		require.Equal(t, "late", string(b[:n]))
	})
}

// TestStreamBackpressure: while the reader does not read, the writer
// fills the bounded buffers (the receiver's 1 MiB, KCP's windows, the
// sender's send queue) and then blocks until its write deadline, returning
// a timeout with a partial count rather than ErrWouldBlock. Neither side
// buffers without limit. Once the reader drains, every byte arrives intact
// and in order.
func TestStreamBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 3, netsim.Impairment{Delay: 10 * time.Millisecond}, nil, nil)
		data := testMessage(3, 16<<20)
		start := time.Now()
		require.NoError(t, p.cli.SetWriteDeadline(start.Add(5*time.Second)))
		n, err := p.cli.Write(data)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "write must block until its deadline, got %v", err)
		require.False(t, errors.Is(err, ErrWouldBlock))
		require.Equal(t, 5*time.Second, time.Since(start))
		require.Greater(t, n, streamRecvBuffer)

		// Receiver: its buffer is full but bounded (one message of slack).
		p.srv.mu.Lock()
		buffered := len(p.srv.buf) - p.srv.off
		p.srv.mu.Unlock()
		require.GreaterOrEqual(t, buffered, streamRecvBuffer)
		require.LessOrEqual(t, buffered, streamRecvBuffer+streamChunk)
		// Sender: the session queue is bounded by SendQueueBytes.
		require.LessOrEqual(t, p.cli.Session().Stats().SendQueueBytes, defaultSendQueueBytes+streamChunk)
		// What the writer got in is bounded by everything in between:
		// receiver buffer + KCP receive window + send queue.
		require.Less(t, n, 4<<20)

		// Drain, then finish the write with no deadline.
		got := make(chan []byte)
		go func() {
			b, err := io.ReadAll(p.srv)
			if err != nil {
				b = nil
			}
			got <- b
		}()
		require.NoError(t, p.cli.SetWriteDeadline(time.Time{}))
		m, err := p.cli.Write(data[n:])
		require.NoError(t, err)
		require.Equal(t, len(data)-n, m)
		require.NoError(t, p.cli.Close())
		b := <-got
		require.True(t, bytes.Equal(data, b), "data mismatch: got %d bytes, want %d", len(b), len(data))
	})
}

// TestStreamCloseUnblocks: Close wakes a blocked Read and a blocked Write
// on the same stream with net.ErrClosed.
func TestStreamCloseUnblocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 4, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		readErr := make(chan error, 1)
		go func() {
			_, err := p.srv.Read(make([]byte, 10))
			readErr <- err
		}()
		writeErr := make(chan error, 1)
		go func() {
			// The client does not read: this Write blocks.
			_, err := p.srv.Write(make([]byte, 32<<20))
			writeErr <- err
		}()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Empty(t, readErr)
		require.Empty(t, writeErr)
		require.NoError(t, p.srv.Close())
		require.ErrorIs(t, <-readErr, net.ErrClosed)
		require.ErrorIs(t, <-writeErr, net.ErrClosed)
	})
}

// TestStreamListenerClose: as with a TCP listener, Close stops Accept
// (ErrListenerClosed) and refuses new clients (ErrServerShuttingDown, an
// authenticated refusal), while the stream already accepted keeps working
// both ways. The Server under the Listener stops once that stream ended.
func TestStreamListenerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 5, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		acceptErr := make(chan error, 1)
		go func() {
			_, err := p.ln.Accept()
			acceptErr <- err
		}()
		synctest.Wait()
		require.NoError(t, p.ln.Close())
		require.ErrorIs(t, <-acceptErr, ErrListenerClosed)
		require.ErrorIs(t, <-acceptErr2(p.ln), net.ErrClosed)

		// A new client is refused, clearly.
		pc, err := p.net.Listen("10.0.0.3:5000")
		require.NoError(t, err)
		cfg := &Config{ServerPublicKey: p.ln.Server().PublicKey()}
		_, err = DialConnOver(context.Background(), pc, p.ln.Addr(), cfg)
		require.ErrorIs(t, err, ErrServerShuttingDown)

		// The accepted stream still carries data both ways.
		_, err = p.cli.Write([]byte("ping"))
		require.NoError(t, err)
		got := make([]byte, 4)
		_, err = io.ReadFull(p.srv, got)
		require.NoError(t, err)
		require.Equal(t, "ping", string(got))
		_, err = p.srv.Write([]byte("pong"))
		require.NoError(t, err)
		require.NoError(t, p.srv.Close())
		all, err := io.ReadAll(p.cli)
		require.NoError(t, err, "an orderly close after everything arrived reads io.EOF")
		require.Equal(t, "pong", string(all))
		select {
		case <-p.ln.stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("the Server did not stop after its last session ended")
		}
	})
}

func acceptErr2(ln *Listener) <-chan error {
	ch := make(chan error, 1)
	_, err := ln.Accept()
	ch <- err
	return ch
}

// TestStreamCloseWhilePaused: the reader has not read, so its buffer is
// full and the rest of the data waits in KCP (acknowledged, since it fits
// the receive window); then the writer closes. Nothing may be lost: the
// close hands over what KCP holds, and the reader gets every byte, then
// io.EOF.
func TestStreamCloseWhilePaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 8, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		data := testMessage(8, streamRecvBuffer+200<<10) // 1 MiB buffer + 200 KiB left in KCP
		n, err := p.cli.Write(data)
		require.NoError(t, err)
		require.Equal(t, len(data), n)
		time.Sleep(time.Second) // everything arrives and is acknowledged
		p.srv.mu.Lock()
		buffered, paused := len(p.srv.buf)-p.srv.off, p.srv.paused
		p.srv.mu.Unlock()
		require.True(t, paused, "the reader's buffer should be full")
		require.Less(t, buffered, len(data), "part of the data should still be in KCP")

		require.NoError(t, p.cli.Close())
		<-p.srv.Session().Done()
		got, err := io.ReadAll(p.srv)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got), "got %d bytes, want %d", len(got), len(data))
	})
}

// TestStreamNoLeak: after a dialled and an accepted stream and their
// Listener are closed, every goroutine they started has exited.
func TestStreamNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, cli, srv := loopbackStreamPair(t, nil)
	_, err := cli.Write([]byte("ping"))
	require.NoError(t, err)
	_, err = io.ReadFull(srv, make([]byte, 4))
	require.NoError(t, err)
	require.NoError(t, cli.Close())
	require.NoError(t, srv.Close())
	require.NoError(t, ln.Close())
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
