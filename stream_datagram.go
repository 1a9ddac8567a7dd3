package uxp

import (
	"context"
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
