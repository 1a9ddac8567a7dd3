// Package uxpbench holds the uxp side of the benchmark scenarios: a server
// handler that echoes or sinks messages, and client drivers for bulk
// goodput, closed-loop and open-loop request/response. `uxp bench` and the
// cross-system suite in bench/ both use it, so the two measure uxp the same
// way.
//
// Every benchmark message starts with a 16-byte header:
//
//	 0      1        8                   16
//	+------+--------+-------------------+------------
//	| kind | unused | client clock (ns) | payload ...
//	+------+--------+-------------------+------------
//
// kind 'E' asks the server to echo the message, kind 'S' to count and
// discard it. The client clock comes back unchanged in the echo, so the
// client computes the RTT without matching requests.
package uxpbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp"
)

// Message kinds.
const (
	KindEcho byte = 'E' // server writes the message back
	KindSink byte = 'S' // server counts and drops it
)

// HeaderSize is the benchmark header every message starts with.
const HeaderSize = 16

// PutHeader writes a benchmark header with the client clock ts into b.
func PutHeader(b []byte, kind byte, ts time.Duration) {
	b[0] = kind
	binary.LittleEndian.PutUint64(b[8:16], uint64(ts))
}

// Stamp returns the client clock carried by a benchmark message.
func Stamp(b []byte) time.Duration { return time.Duration(binary.LittleEndian.Uint64(b[8:16])) }

// Server is a uxp.ServerHandler and uxp.ConnHandler that echoes KindEcho
// messages and counts KindSink bytes. Safe for concurrent use. Create it
// with NewServer.
type Server struct {
	uxp.NopServerHandler
	conn     serverConn
	sessions atomic.Int64
	accepted atomic.Int64
	sink     Sink

	endedMu sync.Mutex
	ended   map[string]int // sessions ended, by error
}

// NewServer returns a Server with nothing counted yet.
func NewServer() *Server {
	s := &Server{}
	s.conn.sink = &s.sink
	return s
}

// Sink counts the bytes of sink messages and when the first and last of
// them arrived.
type Sink struct {
	mu          sync.Mutex
	bytes       int64
	first, last time.Time
}

// Add counts n bytes arrived now.
func (s *Sink) Add(n int) {
	now := time.Now()
	s.mu.Lock()
	if s.bytes == 0 {
		s.first = now
	}
	s.bytes += int64(n)
	s.last = now
	s.mu.Unlock()
}

// Snapshot returns the bytes counted and the time between the first and
// the last arrival.
func (s *Sink) Snapshot() (int64, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, s.last.Sub(s.first)
}

// OnNewConnComing adopts the session.
func (s *Server) OnNewConnComing(c *uxp.Conn) {
	s.sessions.Add(1)
	s.accepted.Add(1)
	c.SetHandler(&s.conn)
}

// OnConnClosed forgets the session and counts how it ended.
func (s *Server) OnConnClosed(_ *uxp.Conn, err error) {
	s.sessions.Add(-1)
	s.endedMu.Lock()
	if s.ended == nil {
		s.ended = make(map[string]int)
	}
	s.ended[fmt.Sprint(err)]++
	s.endedMu.Unlock()
}

// Ended describes how the sessions that ended did, one "count× error"
// per distinct error; empty if none ended.
func (s *Server) Ended() string {
	s.endedMu.Lock()
	defer s.endedMu.Unlock()
	parts := make([]string, 0, len(s.ended))
	for e, n := range s.ended {
		parts = append(parts, fmt.Sprintf("%d× %s", n, e))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// serverConn is the ConnHandler of every server session.
type serverConn struct {
	uxp.NopHandler
	sink *Sink
}

// OnNewDataComing echoes or sinks one message.
func (h *serverConn) OnNewDataComing(c *uxp.Conn, b []byte) {
	if len(b) >= HeaderSize && b[0] == KindEcho {
		_, _ = c.Write(b) // Write copies b
		return
	}
	h.sink.Add(len(b))
}

// Sessions returns the live sessions; Accepted all sessions ever announced.
func (s *Server) Sessions() int64 { return s.sessions.Load() }

// Accepted returns how many sessions the server has announced in total.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// SinkStats returns the sink's byte count and arrival span.
func (s *Server) SinkStats() (int64, time.Duration) { return s.sink.Snapshot() }

// Client is a uxp.ConnHandler for the client side of the scenarios. The
// zero value is ready; set it as the handler of one uxp client.
type Client struct {
	uxp.NopHandler
	base time.Time
	once sync.Once

	mu      sync.Mutex
	rtts    []time.Duration
	want    int           // closed loop: stop after this many replies
	size    int           // closed loop: request size
	stopAt  time.Duration // closed loop: stop after this clock value
	done    chan struct{} // closed loop: closed when finished
	reqBuf  []byte
	closed  bool
	replies atomic.Int64
}

func (cl *Client) clock() time.Duration {
	cl.once.Do(func() { cl.base = time.Now() })
	return time.Since(cl.base)
}

// OnNewDataComing records the RTT of an echo and, in a closed-loop run,
// sends the next request from inside the callback (Write is allowed here).
func (cl *Client) OnNewDataComing(c *uxp.Conn, b []byte) {
	if len(b) < HeaderSize {
		return
	}
	now := cl.clock()
	rtt := now - Stamp(b)
	cl.replies.Add(1)
	cl.mu.Lock()
	cl.rtts = append(cl.rtts, rtt)
	next := cl.done != nil && !cl.closed
	if next && (len(cl.rtts) >= cl.want || now >= cl.stopAt) {
		cl.closed = true
		close(cl.done)
		next = false
	}
	cl.mu.Unlock()
	if next {
		PutHeader(cl.reqBuf, KindEcho, cl.clock())
		_, _ = c.Write(cl.reqBuf)
	}
}

// RTTs returns the recorded round-trip times and forgets them.
func (cl *Client) RTTs() []time.Duration {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	r := cl.rtts
	cl.rtts = nil
	return r
}

// ClosedLoop sends size-byte requests one at a time, each after the
// previous echo, until n replies arrived or d passed, and returns the
// RTTs.
func (cl *Client) ClosedLoop(ctx context.Context, c *uxp.Conn, size, n int, d time.Duration) ([]time.Duration, error) {
	size = max(size, HeaderSize)
	cl.mu.Lock()
	cl.want, cl.size = n, size
	cl.stopAt = cl.clock() + d
	cl.done = make(chan struct{})
	cl.reqBuf = make([]byte, size)
	cl.closed = false
	cl.rtts = make([]time.Duration, 0, min(n, 1<<20))
	done := cl.done
	req := make([]byte, size)
	cl.mu.Unlock()
	PutHeader(req, KindEcho, cl.clock())
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-c.Done():
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d + 5*time.Second):
		return nil, errors.New("uxpbench: closed loop stalled")
	}
	cl.mu.Lock()
	cl.done = nil
	cl.mu.Unlock()
	return cl.RTTs(), nil
}

// OpenLoop sends a size-byte request every 1/rate seconds for d, whatever
// the replies do, then waits up to grace for the last echoes. It returns
// the RTTs and the number of requests sent.
func (cl *Client) OpenLoop(ctx context.Context, c *uxp.Conn, size int, rate float64, d, grace time.Duration) ([]time.Duration, int, error) {
	size = max(size, HeaderSize)
	req := make([]byte, size)
	period := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	sent := 0
	for next := start; time.Since(start) < d; next = next.Add(period) {
		if w := time.Until(next); w > 0 {
			select {
			case <-time.After(w):
			case <-ctx.Done():
				return nil, sent, ctx.Err()
			}
		}
		PutHeader(req, KindEcho, cl.clock())
		if _, err := c.Write(req); err != nil {
			return nil, sent, err
		}
		sent++
	}
	deadline := time.Now().Add(grace)
	for cl.replies.Load() < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return cl.RTTs(), sent, nil
}

// Bulk writes chunk-byte sink messages as fast as the session accepts them
// for d, then one echo request, and returns once its echo arrived: by then
// the server has every byte. It returns the bytes written and the time
// until the echo.
func (cl *Client) Bulk(ctx context.Context, c *uxp.Conn, chunk int, d time.Duration) (int64, time.Duration, error) {
	chunk = max(chunk, HeaderSize)
	msg := make([]byte, chunk)
	msg[0] = KindSink
	var sent int64
	start := time.Now()
	for time.Since(start) < d {
		_, err := c.Write(msg)
		switch {
		case err == nil:
			sent += int64(chunk)
		case errors.Is(err, uxp.ErrWouldBlock):
			// No writability callback exists: back off briefly. At the
			// default 1 MiB send queue this sleep is far shorter than the
			// time the queue takes to drain.
			time.Sleep(50 * time.Microsecond)
		default:
			return sent, 0, err
		}
		if ctx.Err() != nil {
			return sent, 0, ctx.Err()
		}
	}
	before := cl.replies.Load()
	fin := make([]byte, HeaderSize)
	for {
		PutHeader(fin, KindEcho, cl.clock())
		_, err := c.Write(fin)
		if err == nil {
			break
		}
		if !errors.Is(err, uxp.ErrWouldBlock) {
			return sent, 0, err
		}
		time.Sleep(50 * time.Microsecond)
	}
	for cl.replies.Load() == before {
		select {
		case <-c.Done():
			return sent, 0, c.Err()
		case <-ctx.Done():
			return sent, 0, ctx.Err()
		case <-time.After(100 * time.Microsecond):
		}
	}
	cl.RTTs()
	return sent, time.Since(start), nil
}
