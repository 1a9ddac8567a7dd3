package uxp

import (
	"context"
	"fmt"
	"net"
)

// The stream adapter's entry points on a Dialer and a Listener.

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
		l.waiting.Add(-1)
		s.accepted()
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
