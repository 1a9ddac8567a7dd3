package uxp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Listener accepts uxp sessions as net.Conns (*StreamConn). It is a Server
// whose handler queues each new session for Accept, so everything about
// the Server applies: the handshake, its Config, its Stats. Create it with
// Listen. All methods are safe for concurrent use.
//
// # Backlog
//
// At most listenBacklog (128) sessions wait for Accept, counting the
// half-open ones that will join them. Beyond that a new client is refused
// during the handshake: its Dial or DialConn fails with ErrServerFull, an
// authenticated refusal, and no session is ever established for it. A
// session confirmed when the backlog filled up in the meantime is ended
// with CloseServerFull, which the client reads as an error matching
// ErrServerFull, never io.EOF.
//
// A session waiting in the backlog buffers little: until Accept, its
// stream takes at most backlogRecvBuffer bytes (plus one message) and each
// of its lanes advertises a receive window of backlogRecvWindow segments,
// so the peer cannot make it hold more. All waiting sessions together hold
// at most listenBacklog × (backlogRecvBuffer + MaxMessageSize + lanes × 2
// × backlogRecvWindow × 1500) bytes of received data (about 16 MiB with
// the defaults and one lane, against 230 MiB without these limits).
// Accept lifts them.
//
// # Closing
//
// Close stops accepting, as a TCP listener's does: new clients are refused
// with ErrServerShuttingDown, sessions waiting in the backlog are closed
// with CloseServerShutdown (their clients read that as an error), and the
// sessions already accepted keep working. The Server under the Listener,
// and its socket, stop once the last accepted session has ended.
// Shutdown also closes the accepted sessions, gracefully.
type Listener struct {
	srv     *Server
	backlog chan *StreamConn
	// waiting counts the sessions admitted for the backlog and not yet
	// taken by Accept (or closed by Close): the backlog's occupancy,
	// reserved when the server admits a session, before it is announced.
	waiting atomic.Int64
	closed  chan struct{} // closed by Close
	stopped chan struct{} // closed when the Server stopped (OnClosed)
	once    sync.Once

	mu      sync.Mutex
	stopErr error // the socket failure that stopped the Server, if any
}

/* Implementation constants */
const (
	// listenBacklog bounds the sessions waiting for Accept, half-open ones
	// included.
	listenBacklog = 128
	// backlogRecvBuffer is the most a stream waiting in the backlog
	// buffers for its first Read (plus at most one message).
	backlogRecvBuffer = 16 << 10
	// backlogRecvWindow is the receive window, in segments, each lane of a
	// session waiting in the backlog advertises. It holds one stream
	// chunk (streamChunk); a larger message waits for Accept.
	backlogRecvWindow = 16
)

// ErrListenerClosed is returned by Listener.Accept after Close. It unwraps
// to net.ErrClosed.
var ErrListenerClosed = fmt.Errorf("uxp: listener closed: %w", net.ErrClosed)

// Listen starts a Server on pc whose sessions are accepted as net.Conns.
// cfg must hold the server's PrivateKey. The Listener owns pc and closes it
// once it and its sessions are done; if Listen fails, pc is closed too,
// as DialConnOver does.
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
	srv.lst = l
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

// Close stops accepting: Accept returns ErrListenerClosed, new clients
// are refused (ErrServerShuttingDown), and sessions still waiting in the
// backlog are closed with CloseServerShutdown. Sessions already accepted
// are left alone, as a TCP listener leaves its connections; the Server
// and its PacketConn stop when the last of them has ended (at once if
// there is none, and then Close waits for it). Close is idempotent. Do
// not call it from a callback.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.srv.refusing.Store(true)
		l.drainBacklog()
		if l.idle() {
			l.srv.Close()
		}
	})
	return nil
}

// Shutdown closes the Listener (as Close does), then shuts the Server down
// gracefully with Server.Shutdown: the accepted sessions deliver what was
// written to them and end with CloseServerShutdown. It returns when they
// all have and the Server has stopped, or when ctx is done (then with
// ctx's error, after ending the rest at once).
func (l *Listener) Shutdown(ctx context.Context) error {
	l.Close()
	return l.srv.Shutdown(ctx)
}

// Addr returns the local address of the listener's socket.
func (l *Listener) Addr() net.Addr { return l.srv.Addr() }

// Server returns the Server under the listener, for its PublicKey and
// Stats.
func (l *Listener) Server() *Server { return l.srv }

var _ net.Listener = (*Listener)(nil)

// drainBacklog ends the sessions waiting for Accept, which the
// application never saw: their clients read CloseServerShutdown.
func (l *Listener) drainBacklog() {
	for {
		select {
		case s := <-l.backlog:
			l.waiting.Add(-1)
			s.c.requestClose(CloseServerShutdown, "listener closed", true)
		default:
			return
		}
	}
}

// reserve takes a backlog slot for a session the server is about to
// announce (Server.onAdmit); false means the backlog is full. Any goroutine.
func (l *Listener) reserve() bool {
	for {
		n := l.waiting.Load()
		if n >= listenBacklog {
			return false
		}
		if l.waiting.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// backlogFull reports whether the sessions waiting for Accept and the
// half-open ones that may join them fill the backlog.
func (l *Listener) backlogFull(halfOpen int) bool {
	return int(l.waiting.Load())+halfOpen >= listenBacklog
}

// listenHandler is the Listener's ServerHandler.
type listenHandler Listener

// OnNewConnComing runs on the session's shard. The server reserved a slot
// for the session (reserve), so the backlog has room.
func (h *listenHandler) OnNewConnComing(c *Conn) {
	s := newStreamConn(c)
	s.recvLimit = backlogRecvBuffer
	c.recvWndCap = backlogRecvWindow
	c.arq.SetRecvWindowCap(backlogRecvWindow)
	c.SetHandler((*streamHandler)(s))
	select {
	case h.backlog <- s:
	default:
		// Cannot happen: reserve bounds the sessions to the channel's
		// capacity. End the session with a code rather than block.
		h.waiting.Add(-1)
		c.requestClose(CloseServerFull, "listener backlog full", true)
		return
	}
	// Close may have drained the backlog just before the push: whoever
	// comes second drains it (Close closes l.closed before it drains).
	select {
	case <-h.closed:
		(*Listener)(h).drainBacklog()
	default:
	}
}

// OnConnClosed runs on the session's shard after the session ended. Once
// the Listener is closed, the last session to end stops the Server; that
// must not run on the shard it waits for.
func (h *listenHandler) OnConnClosed(*Conn, error) { (*Listener)(h).maybeStop() }

// idle reports whether the Server has no session left, ended sessions
// still repeating their close frame (draining) included.
func (l *Listener) idle() bool {
	return l.srv.sessions.Load() == 0 && l.srv.ep.draining.Load() == 0
}

// maybeStop stops the Server once the Listener is closed and idle. It runs
// on a shard (a session ended or stopped draining), which Server.Close
// waits for: hence the goroutine.
func (l *Listener) maybeStop() {
	select {
	case <-l.closed:
		if l.idle() {
			go l.srv.Close()
		}
	default:
	}
}

func (h *listenHandler) OnClosed(err error) {
	h.mu.Lock()
	h.stopErr = err
	h.mu.Unlock()
	close(h.stopped)
}
