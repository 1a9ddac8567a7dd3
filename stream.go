package uxp

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// StreamConn is a uxp session seen as a net.Conn: a reliable, ordered,
// encrypted byte stream. Listener.Accept and DialConn return one. It sits
// on the same session (*Conn) as the callback API, acting as that
// session's ConnHandler, so the session's Stats, Config and lifecycle all
// apply.
//
// Byte-stream semantics: Write may be split into several messages, small
// Writes may be coalesced into one (stream_send.go), and Read returns
// whatever has arrived (a partial read is normal). Write blocks while the
// session's send queue is full (Config.SendQueueBytes), its oldest unsent
// byte has waited more than 2 ms, or it holds more than about twice what
// drains in an RTT (under a congestion controller: its unsent part more
// than 2 ms of the bandwidth estimate), until there is room, the write
// deadline passes, or the session ends.
// The receive side is bounded too: once streamRecvBuffer bytes wait
// unread, the session stops taking messages out of KCP, whose receive
// window then closes, so the peer stops sending. Read returns io.EOF only
// after an orderly end: the peer closed the session (its Close) and
// everything it wrote arrived. Every other end is an error that unwraps to
// net.ErrClosed: a *CloseError with the peer's code (CloseAbandoned when
// the peer gave up on data it had written, CloseServerShutdown, an
// application's code), or this side's own error.
// Deadlines make Read and Write fail with a *DeadlineError, a net.Error
// whose Timeout method reports true.
//
// All methods are safe for concurrent use. Concurrent Writes do not
// interleave their bytes; concurrent Reads each get a contiguous piece.
// Do not call Read or Write from a callback of the same session.
type StreamConn struct {
	c      *Conn   // set before any callback but OnReady; see DialConn
	client *Client // DialConn: closed with the stream

	mu     sync.Mutex
	buf    []byte // received, unread bytes are buf[off:]
	off    int
	err    error // why the session ended, once OnClosed ran
	paused bool  // recvFull said yes; Read must call resumeRecv
	// recvLimit is streamRecvBuffer, or backlogRecvBuffer while the
	// stream waits in a Listener's backlog.
	recvLimit int

	data      chan struct{} // capacity 1: new data or the session ended
	room      chan struct{} // capacity 1: the send queue may have room
	wlock     chan struct{} // capacity 1: one Write at a time
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	rd, wd    deadline

	dg streamDatagrams // stream_datagram.go

	snd          streamSend   // stream_send.go
	backlogged   atomic.Bool  // the session's lanes hold a backlog (sendRoom)
	backlogBytes atomic.Int64 // the bytes in it
}

/* Implementation constants */
const (
	// streamRecvBuffer bounds the bytes a StreamConn buffers for Read; at
	// most one message more is accepted before it stops draining KCP.
	streamRecvBuffer = 1 << 20
	// streamChunk is the largest message a StreamConn Write sends. It stays
	// well below the default MaxMessageSize, so a peer with a smaller
	// MaxMessageSize than ours still accepts our stream.
	streamChunk = 16 << 10
)

func newStreamConn(c *Conn) *StreamConn {
	s := &StreamConn{
		c:         c,
		data:      make(chan struct{}, 1),
		room:      make(chan struct{}, 1),
		wlock:     make(chan struct{}, 1),
		closed:    make(chan struct{}),
		rd:        makeDeadline(),
		wd:        makeDeadline(),
		recvLimit: streamRecvBuffer,
	}
	s.dg.avail = make(chan struct{}, 1)
	return s
}

// accepted lifts the limits of a stream that waited in a Listener's
// backlog (Listener.Accept).
func (s *StreamConn) accepted() {
	s.mu.Lock()
	s.recvLimit = streamRecvBuffer
	s.paused = false
	s.mu.Unlock()
	s.c.openWindow()
}

// DialConn opens a UDP socket, runs the handshake with the server at addr
// ("host:port") and returns the session as a net.Conn (a *StreamConn).
// cfg must hold the server's public key. It fails like Dial: an error
// matching ErrHandshakeFailed for a wrong key or no answer. Closing the
// returned Conn closes the socket too.
func DialConn(ctx context.Context, addr string, cfg *Config) (net.Conn, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("uxp: dial %s: %w", addr, err)
	}
	pc, err := dialUDP(raddr)
	if err != nil {
		return nil, fmt.Errorf("uxp: dial %s: %w", addr, err)
	}
	s, err := DialConnOver(ctx, pc, raddr, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DialConnOver is DialConn on a PacketConn of the caller's (a socket with
// special options, or a test double): it runs the handshake with the
// server at server over pc and returns the session as a stream. The
// stream owns pc and closes it in Close; if DialConnOver fails, pc is
// closed too.
func DialConnOver(ctx context.Context, pc net.PacketConn, server net.Addr, cfg *Config) (*StreamConn, error) {
	s := newStreamConn(nil)
	cl, err := NewClient(pc, server, (*streamHandler)(s), cfg)
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		return nil, err
	}
	if err := cl.Start(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	// OnReady set s.c before Start returned.
	s.client = cl
	return s, nil
}

// Session returns the uxp session under the stream, for its Stats, ID and
// Cipher. Do not call its SetHandler or Write: the stream owns both.
func (s *StreamConn) Session() *Conn { return s.c }

// streamHandler is the StreamConn's ConnHandler (and flowHandler); a
// separate type keeps the callbacks out of StreamConn's API. Its methods
// run on the session's shard.
type streamHandler StreamConn

// OnReady records the session of a dialled stream; an accepted stream
// has it from the start (and must not be written again: its Reads and
// Writes may already run).
func (h *streamHandler) OnReady(c *Conn) {
	if h.c == nil {
		h.c = c
	}
}

func (h *streamHandler) OnNewDataComing(_ *Conn, data []byte) {
	s := (*StreamConn)(h)
	s.mu.Lock()
	if s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	} else if s.off > cap(s.buf)/2 {
		n := copy(s.buf, s.buf[s.off:])
		s.buf, s.off = s.buf[:n], 0
	}
	s.buf = append(s.buf, data...)
	s.mu.Unlock()
	notify(s.data)
}

func (h *streamHandler) OnClosed(_ *Conn, err error) {
	s := (*StreamConn)(h)
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	notify(s.data)
	notify(s.room)
}

// recvFull implements flowHandler.
func (h *streamHandler) recvFull() bool {
	s := (*StreamConn)(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf)-s.off >= s.recvLimit {
		s.paused = true
	}
	return s.paused
}

// Read reads up to len(b) received bytes. It blocks until some are
// available, the read deadline passes (*DeadlineError), the peer closed
// the session in order (io.EOF, once everything it sent has been read),
// or the session ended otherwise (its error, which unwraps to
// net.ErrClosed: see StreamConn).
func (s *StreamConn) Read(b []byte) (int, error) {
	for {
		select {
		case <-s.closed:
			return 0, ErrConnClosed
		case <-s.rd.wait():
			return 0, &DeadlineError{Op: "read"}
		default:
		}
		s.mu.Lock()
		if avail := len(s.buf) - s.off; avail > 0 {
			n := copy(b, s.buf[s.off:])
			s.off += n
			left := len(s.buf) - s.off
			resume := s.paused && left < s.recvLimit
			if resume {
				s.paused = false
			}
			again := left > 0
			s.mu.Unlock()
			if again {
				notify(s.data) // wake another reader for the rest
			}
			if resume {
				s.c.resumeRecv()
			}
			return n, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			notify(s.data) // every other reader sees the end too
			if orderlyEnd(err) {
				return 0, io.EOF
			}
			return 0, err
		}
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-s.data:
		case <-s.closed:
		case <-s.rd.wait():
		}
	}
}

// Close closes the session: bytes already written are still delivered
// while the peer acknowledges them (Config.CloseLinger, as with
// Conn.Close), then the peer reads io.EOF; if the linger runs out first
// the peer reads a *CloseError with CloseAbandoned instead. Close returns
// at once, as a TCP socket's does; Session().Done() and Session().Err()
// tell when and how the session ended. Blocked Reads and Writes return at
// once with ErrConnClosed. A stream from DialConn closes its socket when
// the session has ended. A second Close returns ErrConnClosed.
func (s *StreamConn) Close() error {
	err := ErrConnClosed
	s.closeOnce.Do(func() {
		err = nil
		close(s.closed)
		if !s.closeSend(CloseNormal, "", false) {
			return // the shard closes once the tail is handed over
		}
		s.c.Close()
		// A dialled stream's Client stops its goroutines and closes its
		// socket by itself once the session ends (Client.onConnFreed), so nothing here
		// waits for the linger.
	})
	return err
}

// CloseWithError is Close with a code and a reason for the peer, as
// Conn.CloseWithError: the peer's Read returns a *CloseError carrying
// them once it has read everything written before. It returns
// ErrBadCloseCode (and closes nothing) for a reserved code or a reason
// longer than MaxCloseReason, and ErrConnClosed after Close.
func (s *StreamConn) CloseWithError(code uint16, reason string) error {
	if (code != CloseNormal && code < CloseApplicationMin) || len(reason) > MaxCloseReason {
		return ErrBadCloseCode
	}
	err := ErrConnClosed
	s.closeOnce.Do(func() {
		close(s.closed)
		if !s.closeSend(code, reason, true) {
			err = nil // the shard closes once the tail is handed over
			return
		}
		err = s.c.CloseWithError(code, reason)
	})
	return err
}

// LocalAddr returns the address of the session's UDP socket.
func (s *StreamConn) LocalAddr() net.Addr { return s.c.LocalAddr() }

// RemoteAddr returns the peer's UDP address.
func (s *StreamConn) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

// SetDeadline sets both the read and the write deadline. A zero t means
// no deadline. After Close it returns ErrConnClosed.
func (s *StreamConn) SetDeadline(t time.Time) error {
	if isClosed(s.closed) {
		return ErrConnClosed
	}
	s.rd.set(t)
	s.wd.set(t)
	return nil
}

// SetReadDeadline sets the time after which Read fails with a
// *DeadlineError, including a Read already blocked. A zero t means none.
// After Close it returns ErrConnClosed.
func (s *StreamConn) SetReadDeadline(t time.Time) error {
	if isClosed(s.closed) {
		return ErrConnClosed
	}
	s.rd.set(t)
	return nil
}

// SetWriteDeadline sets the time after which Write fails with a
// *DeadlineError, including a Write already blocked. A zero t means none.
// After Close it returns ErrConnClosed.
func (s *StreamConn) SetWriteDeadline(t time.Time) error {
	if isClosed(s.closed) {
		return ErrConnClosed
	}
	s.wd.set(t)
	return nil
}

var (
	_ net.Conn        = (*StreamConn)(nil)
	_ flowHandler     = (*streamHandler)(nil)
	_ DatagramHandler = (*streamHandler)(nil)
)

// deadline is a settable deadline whose wait channel is closed once it has
// passed, the same design as net.Pipe's.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passed
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	passed := isClosed(d.cancel)
	if t.IsZero() {
		if passed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if passed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !passed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// notify signals ch without blocking: a pending signal is enough.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
