package uxp

import (
	"bytes"
	"context"
	"errors"
	"github.com/uxp-go/uxp/internal/arq"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/wire"
)

// closeTestSize is what the slow-reader tests write before Close: 3 MiB,
// three times the send queue and the reader's buffer.
const closeTestSize = 3 << 20

// slowRead reads r at about rate bytes per second (fake time) into a
// buffer until r fails, and returns what it read and the error.
func slowRead(r io.Reader, rate int) ([]byte, error) {
	const chunk = 16 << 10
	var got []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
		time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
	}
}

// requireAbandoned checks that err reports data the peer abandoned: a
// remote *CloseError with CloseAbandoned, which is not io.EOF.
func requireAbandoned(t *testing.T, err error) {
	t.Helper()
	require.NotErrorIs(t, err, io.EOF)
	var ce *CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, CloseAbandoned, ce.Code, "error: %v", err)
	require.True(t, ce.Remote)
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, err, ErrPeerClosed)
}

// TestStreamSlowReaderClose is the acceptance case of issue 13 on the
// stream adapter: 3 MiB written, then Close, to a reader consuming about
// 200 KB/s. With the default CloseLinger the reader gets all 3 MiB, then
// io.EOF (Close returned at once, and the linger went on for as long as
// the reader made progress: about 7 s, what the receive side holds once
// the stream's time-bounded send queue has let Write return). With a short CloseLinger and a
// reader that stops, it gets fewer bytes and then an error saying they
// were abandoned, never io.EOF; the writer's session reports it too.
func TestStreamSlowReaderClose(t *testing.T) {
	t.Run("DefaultLingerDeliversAll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newStreamPair(t, 31, netsim.Impairment{Delay: 10 * time.Millisecond}, nil, nil)
			data := testMessage(31, closeTestSize)
			read := make(chan []byte, 1)
			readErr := make(chan error, 1)
			go func() {
				got, err := slowRead(p.srv, 200_000)
				read <- got
				readErr <- err
			}()
			n, err := p.cli.Write(data)
			require.NoError(t, err)
			require.Equal(t, len(data), n)
			start := time.Now()
			require.NoError(t, p.cli.Close())
			require.Zero(t, time.Since(start), "Close returns without waiting for the linger")
			got := <-read
			require.ErrorIs(t, <-readErr, io.EOF)
			took := time.Since(start)
			t.Logf("all %d bytes read %v after Close", len(got), took)
			// Write returns once the send queue is down to its time bound
			// (stream_send.go), so at Close the data left is what the
			// receive side's window and buffer hold (~1.4 MB, 7 s at this
			// reader's pace), not all 3 MiB as before that bound.
			require.Greater(t, took, 3*defaultCloseLinger, "the linger outlasts CloseLinger while the reader makes progress")
			require.Equal(t, len(data), len(got))
			require.True(t, bytes.Equal(data, got))
			<-p.cli.Session().Done()
			require.ErrorIs(t, p.cli.Session().Err(), ErrConnClosed)
			require.NotErrorAs(t, p.cli.Session().Err(), new(*CloseError), "an orderly close is not abandoned")
		})
	})
	t.Run("ShortLingerStoppedReader", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cliCfg := &Config{CloseLinger: 300 * time.Millisecond}
			p := newStreamPair(t, 32, netsim.Impairment{Delay: 10 * time.Millisecond}, nil, cliCfg)
			data := testMessage(32, closeTestSize)
			// The writer queues what it can in 2 s, then closes.
			require.NoError(t, p.cli.SetWriteDeadline(time.Now().Add(2*time.Second)))
			type result struct {
				n   int
				err error
			}
			wrote := make(chan result, 1)
			go func() {
				n, err := p.cli.Write(data)
				wrote <- result{n, err}
			}()
			// The reader takes 100 KB, then stops reading.
			first := make([]byte, 100_000)
			_, err := io.ReadFull(p.srv, first)
			require.NoError(t, err)
			w := <-wrote
			require.ErrorIs(t, w.err, os.ErrDeadlineExceeded)
			n := w.n
			require.NoError(t, p.cli.Close())
			<-p.cli.Session().Done()
			var local *CloseError
			require.ErrorAs(t, p.cli.Session().Err(), &local, "the closing side learns that data was abandoned")
			require.Equal(t, CloseAbandoned, local.Code)
			require.False(t, local.Remote)

			// The reader resumes: it gets part of what was written, then
			// the abandoned error.
			rest, err := io.ReadAll(p.srv)
			requireAbandoned(t, err)
			got := append(first, rest...)
			t.Logf("written %d, queued %d, delivered %d, then: %v", len(data), n, len(got), err)
			require.Less(t, len(got), n)
			require.True(t, bytes.Equal(data[:len(got)], got))
		})
	})
}

// TestConnSlowReaderClose is the same acceptance case on the callback
// API. The reader's callback takes 80 ms per 16 KiB message (about
// 200 KB/s); with the default linger it gets all 3 MiB, then OnClosed
// with an orderly *CloseError. A reader whose acknowledgements stop (its
// path back to the writer fails) gets fewer messages and CloseAbandoned.
func TestConnSlowReaderClose(t *testing.T) {
	const msgSize = 16 << 10
	tests := []struct {
		name    string
		linger  time.Duration
		slow    bool // the reader's callback sleeps
		ackLoss bool // the reader's packets stop reaching the writer
	}{
		{name: "DefaultLingerDeliversAll", slow: true},
		{name: "ShortLingerNoAcks", linger: 300 * time.Millisecond, ackLoss: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newSimPair(t, uint64(40+i), nil, &Config{CloseLinger: tt.linger}, false)
				p.net.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
				var mu sync.Mutex
				var got []byte
				var ended error
				done := make(chan struct{})
				p.srvH.newConn = func() *recordConn {
					r := newRecordConn()
					r.onData = func(_ *Conn, b []byte) {
						mu.Lock()
						got = append(got, b...)
						mu.Unlock()
						if tt.slow {
							time.Sleep(80 * time.Millisecond)
						}
					}
					return r
				}
				require.NoError(t, p.cli.Start(context.Background()))
				conn := p.cli.Conn()
				data := testMessage(40+i, closeTestSize)
				if tt.ackLoss {
					p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), netsim.Impairment{Blackhole: true})
				}
				written := 0
				for off := 0; off < len(data); {
					_, err := conn.Write(data[off : off+msgSize])
					if errors.Is(err, ErrWouldBlock) {
						if tt.ackLoss && written > 0 {
							break // nothing will be acknowledged: close with what is queued
						}
						time.Sleep(5 * time.Millisecond)
						continue
					}
					require.NoError(t, err)
					off += msgSize
					written = off
				}
				require.NoError(t, conn.Close())
				<-conn.Done()
				synctest.Wait()
				time.Sleep(time.Second) // the server's shard finishes its callbacks
				p.srvH.mu.Lock()
				h := p.srvH.handlers[0]
				p.srvH.mu.Unlock()
				_, _, closed := h.snapshot()
				require.Len(t, closed, 1)
				ended = closed[0]
				close(done)
				mu.Lock()
				defer mu.Unlock()
				if !tt.ackLoss {
					require.True(t, bytes.Equal(data, got), "got %d of %d bytes", len(got), len(data))
					var ce *CloseError
					require.ErrorAs(t, ended, &ce)
					require.Equal(t, CloseNormal, ce.Code)
					require.True(t, ce.Remote)
					require.ErrorIs(t, ended, ErrPeerClosed)
					require.ErrorIs(t, conn.Err(), ErrConnClosed)
					return
				}
				t.Logf("written %d, delivered %d, then: %v", written, len(got), ended)
				requireAbandoned(t, ended)
				require.Less(t, len(got), written)
				require.True(t, bytes.Equal(data[:len(got)], got))
				var local *CloseError
				require.ErrorAs(t, conn.Err(), &local)
				require.Equal(t, CloseAbandoned, local.Code)
			})
		})
	}
}

// TestCloseLingerNegativeAborts: CloseLinger < 0 abandons unacknowledged
// data at once, like SO_LINGER 0.
func TestCloseLingerNegativeAborts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 45, nil, &Config{CloseLinger: -1}, true)
		p.net.SetDefault(netsim.Impairment{Delay: 50 * time.Millisecond})
		conn := p.cli.Conn()
		_, err := conn.Write(make([]byte, 60000))
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		<-conn.Done()
		var local *CloseError
		require.ErrorAs(t, conn.Err(), &local)
		require.Equal(t, CloseAbandoned, local.Code)
	})
}

// TestCloseWithError: the code and reason arrive intact, on the callback
// API (OnClosed) and on the stream adapter (Read, after the data).
func TestCloseWithError(t *testing.T) {
	const code, reason = 0x4242, "maintenance: back in 5 minutes"
	t.Run("Callback", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newSimPair(t, 46, nil, nil, true)
			conn := p.cli.Conn()
			require.ErrorIs(t, conn.CloseWithError(CloseProtocolError, ""), ErrBadCloseCode, "SDK codes are reserved")
			require.ErrorIs(t, conn.CloseWithError(code, string(make([]byte, MaxCloseReason+1))), ErrBadCloseCode)
			_, err := conn.Write([]byte("last words"))
			require.NoError(t, err)
			require.NoError(t, conn.CloseWithError(code, reason))
			<-conn.Done()
			synctest.Wait()
			h := p.srvH.handler(0)
			_, msgs, closed := h.snapshot()
			require.Equal(t, [][]byte{[]byte("last words")}, msgs)
			require.Len(t, closed, 1)
			require.Equal(t, &CloseError{Code: code, Reason: reason, Remote: true}, closed[0])
			require.ErrorIs(t, closed[0], ErrPeerClosed)
			require.Equal(t, &CloseError{Code: code, Reason: reason}, conn.Err())
			require.ErrorIs(t, conn.Err(), ErrConnClosed)
		})
	})
	t.Run("Stream", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newStreamPair(t, 47, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
			_, err := p.srv.Write([]byte("bye"))
			require.NoError(t, err)
			require.NoError(t, p.srv.CloseWithError(code, reason))
			got, err := io.ReadAll(p.cli)
			require.Equal(t, "bye", string(got))
			var ce *CloseError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, CloseError{Code: code, Reason: reason, Remote: true}, *ce)
			require.NotErrorIs(t, err, io.EOF)
			// Writes see it too.
			_, err = p.cli.Write([]byte("x"))
			require.ErrorAs(t, err, &ce)
			require.Equal(t, uint16(code), ce.Code)
		})
	})
}

// TestServerCloseIsNotEOF: Server.Close is immediate, and its clients'
// streams end with the server-shutdown code, not io.EOF.
func TestServerCloseIsNotEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 48, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		require.NoError(t, p.ln.Server().Close())
		_, err := io.ReadAll(p.cli)
		var ce *CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, CloseServerShutdown, ce.Code)
		require.True(t, ce.Remote)
	})
}

// TestStreamAfterClose: after Close, the deadline setters and a second
// Close return errors matching net.ErrClosed, as net.TCPConn's do.
func TestStreamAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 49, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		for _, s := range []*StreamConn{p.cli, p.srv} {
			require.NoError(t, s.Close())
			require.ErrorIs(t, s.Close(), net.ErrClosed)
			require.ErrorIs(t, s.SetDeadline(time.Now()), net.ErrClosed)
			require.ErrorIs(t, s.SetReadDeadline(time.Now()), net.ErrClosed)
			require.ErrorIs(t, s.SetWriteDeadline(time.Now()), net.ErrClosed)
			require.ErrorIs(t, s.CloseWithError(CloseApplicationMin, ""), net.ErrClosed)
		}
	})
}

// TestCloseFrameCodec: the close frame's layout, the earlier one-byte
// layout, and exact length checks.
func TestCloseFrameCodec(t *testing.T) {
	c := twoLanes(t)
	c.arq.SetMessageCounts(0, 7, 0)
	c.arq.SetMessageCounts(1, 1<<31, 0)
	body := c.appendCloseFrame(nil, 0x1234, "why")
	require.Equal(t, []byte{0x34, 0x12, 2, 7, 0, 0, 0, 0, 0, 0, 0x80, 'w', 'h', 'y'}, body)
	f, ok := parseCloseFrame(body)
	require.True(t, ok)
	require.Equal(t, uint16(0x1234), f.Code)
	require.Equal(t, "why", f.Reason)
	require.Len(t, f.Counts, 8)

	f, ok = parseCloseFrame([]byte{byte(CloseServerShutdown)})
	require.True(t, ok, "the earlier one-byte layout")
	require.Equal(t, CloseServerShutdown, f.Code)
	require.Nil(t, f.Counts)

	long := c.appendCloseFrame(nil, 1, string(make([]byte, MaxCloseReason+10)))
	require.Len(t, long, closeHeaderSize+8+MaxCloseReason, "the reason is cut to MaxCloseReason")

	for _, bad := range [][]byte{
		nil,
		{0, 0},                // no lane count
		{0, 0, 0},             // zero lanes
		{0, 0, 2, 1, 0, 0, 0}, // counts cut short
		{0, 0, maxLanes + 1},  // too many lanes
		append([]byte{0, 0, 1, 0, 0, 0, 0}, make([]byte, MaxCloseReason+1)...), // reason too long
	} {
		_, ok := parseCloseFrame(bad)
		require.False(t, ok, "%x", bad)
	}

	// The receiver checks the counts: a claim of an orderly end with a
	// message missing is reported as abandoned.
	rc := twoLanes(t)
	rc.arq.SetMessageCounts(0, 0, 7)
	rc.arq.SetMessageCounts(1, 0, 1<<31)
	require.True(t, rc.tookAll(f0(t, body)))
	rc.arq.SetMessageCounts(1, 0, 1<<31-1)
	require.False(t, rc.tookAll(f0(t, body)))
}

func f0(t *testing.T, body []byte) wire.Close {
	t.Helper()
	f, ok := parseCloseFrame(body)
	require.True(t, ok)
	return f
}

// twoLanes is a session with two lanes, never used, for the close frame's
// counts.
func twoLanes(t testing.TB) *Conn {
	t.Helper()
	c := &Conn{}
	c.arq.Init(arq.Config{Priorities: make([]int, 2)}, &arq.Shard{}, nil, 1000)
	return c
}
