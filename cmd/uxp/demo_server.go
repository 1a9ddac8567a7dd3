package main

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp"
)

// echoServer is the demo's ServerHandler: it gives every session an
// echoConn. Its callbacks run on the Server's update workers.
type echoServer struct {
	uxp.NopServerHandler

	wake chan struct{} // capacity 1: some echoConn has a backlog

	mu    sync.Mutex // guards conns
	conns map[*uxp.Conn]*echoConn

	retries atomic.Uint64 // echo writes that got ErrWouldBlock
	closed  atomic.Uint64 // sessions ended
}

func newEchoServer() *echoServer {
	return &echoServer{wake: make(chan struct{}, 1), conns: make(map[*uxp.Conn]*echoConn)}
}

func (s *echoServer) OnNewConnComing(c *uxp.Conn) {
	e := &echoConn{srv: s}
	s.mu.Lock()
	s.conns[c] = e
	s.mu.Unlock()
	c.SetHandler(e)
}

func (s *echoServer) OnConnClosed(c *uxp.Conn, _ error) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.closed.Add(1)
}

// echoConn echoes every message of one session back to its sender.
//
// Conn.Write never blocks: when the session's send queue is full it returns
// ErrWouldBlock and queues nothing. An echo server that dropped the message
// then would break the demo's exactly-once check, so the message is copied
// into a backlog that flushLoop retries; while a backlog exists, new
// messages join its tail so the echoes stay in order. The client's
// in-flight window normally keeps the queue far from full, so the backlog
// is the exception, not the path.
type echoConn struct {
	uxp.NopHandler
	srv *echoServer

	// mu guards backlog. OnNewDataComing (on the session's worker) and
	// flushLoop both write under it; Write only enqueues, so holding mu
	// across it never waits on the worker.
	mu      sync.Mutex
	backlog [][]byte
}

// OnNewDataComing runs on the session's worker. data is only valid during
// the call, but Write copies it, so only the backlog needs a copy.
func (e *echoConn) OnNewDataComing(c *uxp.Conn, data []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.backlog) == 0 {
		_, err := c.Write(data)
		if !errors.Is(err, uxp.ErrWouldBlock) {
			// Sent, or the session is ending and the echo cannot be
			// delivered anyway; the client reports what is missing.
			return
		}
		e.srv.retries.Add(1)
	}
	e.backlog = append(e.backlog, bytes.Clone(data))
	notify(e.srv.wake)
}

// flush writes as much of the backlog as the send queue takes and reports
// whether some is left.
func (e *echoConn) flush(c *uxp.Conn) (more bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.backlog) > 0 {
		_, err := c.Write(e.backlog[0])
		if errors.Is(err, uxp.ErrWouldBlock) {
			e.srv.retries.Add(1)
			return true
		}
		// Either sent, or the session ended (which loses the whole backlog
		// and is reported by the client).
		e.backlog[0] = nil
		e.backlog = e.backlog[1:]
		if err != nil {
			e.backlog = nil
		}
	}
	return false
}

/* Implementation constants */

// echoRetryInterval is how often a backlog is retried: long enough for KCP
// to get acknowledgements back, short compared with the demo's RTTs.
const echoRetryInterval = 5 * time.Millisecond

// flushLoop retries backlogged echoes until stop is closed.
func (s *echoServer) flushLoop(stop <-chan struct{}) {
	t := time.NewTicker(echoRetryInterval)
	defer t.Stop()
	pending := false
	for {
		var tick <-chan time.Time
		if pending {
			tick = t.C
		}
		select {
		case <-stop:
			return
		case <-s.wake:
		case <-tick:
		}
		pending = false
		s.mu.Lock()
		conns := make(map[*uxp.Conn]*echoConn, len(s.conns))
		for c, e := range s.conns {
			conns[c] = e
		}
		s.mu.Unlock()
		for c, e := range conns {
			if e.flush(c) {
				pending = true
			}
		}
	}
}

// notify signals ch, of capacity 1, without blocking; a pending signal
// already covers this one.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
