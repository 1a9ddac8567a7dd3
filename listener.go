package uxp

import (
	"fmt"
	"net"
	"sync"
)

// Listener accepts uxp sessions as net.Conns (*StreamConn). It is a Server
// whose handler queues each new session for Accept, so everything about
// the Server applies: the handshake, its Config, its Stats. Create it with
// Listen. All methods are safe for concurrent use.
type Listener struct {
	srv     *Server
	backlog chan *StreamConn
	closed  chan struct{} // closed by Close
	stopped chan struct{} // closed when the Server stopped (OnClosed)
	once    sync.Once

	mu      sync.Mutex
	stopErr error // the socket failure that stopped the Server, if any
}

// listenBacklog bounds the sessions waiting for Accept; a session arriving
// when it is full is closed at once (the client sees its stream end).
// /* Implementation constant */
const listenBacklog = 128

// ErrListenerClosed is returned by Listener.Accept after Close. It unwraps
// to net.ErrClosed.
var ErrListenerClosed = fmt.Errorf("uxp: listener closed: %w", net.ErrClosed)

// Listen starts a Server on pc whose sessions are accepted as net.Conns.
// cfg must hold the server's PrivateKey. The Listener owns pc and closes it
// in Close; if Listen fails, pc is closed too, as DialConnOver does.
func Listen(pc net.PacketConn, cfg *Config) (*Listener, error) {
	l := &Listener{
		backlog: make(chan *StreamConn, listenBacklog),
		closed:  make(chan struct{}),
		stopped: make(chan struct{}),
	}
	srv, err := NewServer(pc, (*listenHandler)(l), cfg)
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		return nil, err
	}
	l.srv = srv
	if err := srv.Start(); err != nil {
		srv.Close() // closes pc
		return nil, err
	}
	return l, nil
}

// Accept waits for the next session and returns it as a *StreamConn. After
// Close it returns ErrListenerClosed; if the socket failed, that error.
func (l *Listener) Accept() (net.Conn, error) {
	s, err := l.AcceptStream() // stream_dial.go
	if err != nil {
		return nil, err // not a typed nil in a non-nil net.Conn
	}
	return s, nil
}

// Close stops accepting and closes the Server: unlike a TCP listener, this
// ends the sessions already accepted too (their Reads return
// ErrServerClosed), since they share its socket. It closes the
// PacketConn, and returns once every goroutine of the Server has stopped.
// Close is idempotent. Do not call it from a callback.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.srv.Close()
		for {
			select {
			case s := <-l.backlog:
				s.Close()
			default:
				return
			}
		}
	})
	return nil
}

// Addr returns the local address of the listener's socket.
func (l *Listener) Addr() net.Addr { return l.srv.Addr() }

// Server returns the Server under the listener, for its PublicKey and
// Stats.
func (l *Listener) Server() *Server { return l.srv }

var _ net.Listener = (*Listener)(nil)

// listenHandler is the Listener's ServerHandler.
type listenHandler Listener

func (h *listenHandler) OnNewConnComing(c *Conn) {
	s := newStreamConn(c)
	c.SetHandler((*streamHandler)(s))
	select {
	case h.backlog <- s:
	default:
		// Accept is not keeping up: refuse rather than queue without bound.
		h.srv.ep.log.Warn("uxp: listener backlog full; closing new session", "session", c.ID())
		c.Close()
	}
}

func (h *listenHandler) OnConnClosed(*Conn, error) {}

func (h *listenHandler) OnClosed(err error) {
	h.mu.Lock()
	h.stopErr = err
	h.mu.Unlock()
	close(h.stopped)
}
