package uxp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Datagrams on a StreamConn: the session's unreliable datagrams, beside
// the byte stream. Received datagrams wait in a bounded queue for
// ReadDatagram; when it is full the oldest is dropped (and counted), since
// for the state datagrams usually carry the newest matters most. The
// stream's flow control is untouched: datagrams do not count against its
// receive buffer, and WriteDatagram shares the session's send queue with
// Write.

// streamDatagramQueue bounds the datagrams a StreamConn holds for
// ReadDatagram. /* Implementation constant */
const streamDatagramQueue = 256

// streamDatagrams is a StreamConn's datagram queue.
type streamDatagrams struct {
	mu      sync.Mutex
	q       [][]byte // a ring of streamDatagramQueue slots once allocated
	head, n int
	avail   chan struct{} // capacity 1: a datagram was queued, or the session ended
	dropped atomic.Uint64
}

// OnNewDatagramComing implements DatagramHandler for the stream: it copies
// the datagram into the queue.
func (h *streamHandler) OnNewDatagramComing(_ *Conn, msg []byte) {
	d := &(*StreamConn)(h).dg
	b := append([]byte(nil), msg...)
	d.mu.Lock()
	if d.q == nil {
		d.q = make([][]byte, streamDatagramQueue)
	}
	if d.n == len(d.q) {
		// Full: drop the oldest to make room for the newest.
		d.q[d.head] = nil
		d.head = (d.head + 1) % len(d.q)
		d.n--
		d.dropped.Add(1)
	}
	d.q[(d.head+d.n)%len(d.q)] = b
	d.n++
	d.mu.Unlock()
	notify(d.avail)
}

// WriteDatagram sends msg as one unreliable datagram on the stream's
// session (Conn.WriteDatagram): it may be lost, and is not ordered with
// the byte stream. It does not block; a full send queue gives
// ErrWouldBlock, and msg longer than MaxDatagramSize ErrMessageTooLarge.
func (s *StreamConn) WriteDatagram(msg []byte) error {
	select {
	case <-s.closed:
		return ErrConnClosed
	default:
	}
	return s.c.WriteDatagram(msg)
}

// MaxDatagramSize returns the largest msg WriteDatagram accepts.
func (s *StreamConn) MaxDatagramSize() int { return s.c.MaxDatagramSize() }

// ReadDatagram returns the next datagram the peer sent, waiting until one
// arrives, ctx ends (ctx.Err()), the stream is closed (ErrConnClosed) or
// the session ended (its error; datagrams that arrived before are still
// returned first). The stream holds up to 256 unread datagrams; when
// another arrives the oldest is dropped and counted in DatagramsDropped.
// The returned slice is the caller's. Safe for concurrent use.
func (s *StreamConn) ReadDatagram(ctx context.Context) ([]byte, error) {
	d := &s.dg
	for {
		d.mu.Lock()
		if d.n > 0 {
			b := d.q[d.head]
			d.q[d.head] = nil
			d.head = (d.head + 1) % len(d.q)
			d.n--
			more := d.n > 0
			d.mu.Unlock()
			if more {
				notify(d.avail) // another reader may take the next one
			}
			return b, nil
		}
		d.mu.Unlock()
		select {
		case <-s.closed:
			return nil, ErrConnClosed
		default:
		}
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		if err != nil {
			notify(d.avail)
			return nil, err
		}
		select {
		case <-d.avail:
		case <-s.closed:
		case <-s.c.Done():
			// OnClosed has run (s.err is set): loop once more to drain.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// DatagramsDropped counts datagrams dropped because ReadDatagram's queue
// was full.
func (s *StreamConn) DatagramsDropped() uint64 { return s.dg.dropped.Load() }

// DialConn runs a handshake with the server at server over the Dialer's
// socket and returns the session as a net.Conn (a *StreamConn). It fails
// like Dial. Closing the returned Conn closes the session only; the
// Dialer and its socket stay open.
func (d *Dialer) DialConn(ctx context.Context, server net.Addr) (net.Conn, error) {
	s, err := d.DialStream(ctx, server)
	if err != nil {
		return nil, err // not a typed nil in a non-nil net.Conn
	}
	return s, nil
}

// DialStream is DialConn returning the *StreamConn itself.
func (d *Dialer) DialStream(ctx context.Context, server net.Addr) (*StreamConn, error) {
	s := newStreamConn(nil)
	if _, err := d.Dial(ctx, server, (*streamHandler)(s)); err != nil {
		return nil, err
	}
	// OnReady set s.c before Dial returned.
	return s, nil
}

// AcceptStream waits for the next session and returns it as a
// *StreamConn, so that its Session, WriteDatagram and ReadDatagram need no
// type assertion. It fails like Accept.
func (l *Listener) AcceptStream() (*StreamConn, error) {
	select {
	case <-l.closed:
		return nil, ErrListenerClosed
	default:
	}
	select {
	case s := <-l.backlog:
		return s, nil
	case <-l.closed:
		return nil, ErrListenerClosed
	case <-l.stopped:
		l.mu.Lock()
		err := l.stopErr
		l.mu.Unlock()
		if err == nil {
			err = ErrListenerClosed
		}
		return nil, fmt.Errorf("uxp: accept: %w", err)
	}
}
