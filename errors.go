package uxp

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Sentinel errors. Match them with errors.Is, never by their text.
var (
	// ErrWouldBlock is returned by Conn.Write when the session's send queue
	// is full. The message was not queued; retry after the peer has
	// acknowledged some data.
	ErrWouldBlock = errors.New("uxp: send queue full, would block")

	// ErrMessageTooLarge is returned by Conn.Write (and the other reliable
	// writes) for a message longer than Config.MaxMessageSize, and by
	// Conn.WriteDatagram for one longer than Conn.MaxDatagramSize. The
	// message was not queued.
	ErrMessageTooLarge = errors.New("uxp: message too large")

	// ErrNoSuchLane is returned by Conn.WriteLane and
	// Conn.WriteLaneWithDeadline for a lane outside [0, Conn.Lanes()).
	ErrNoSuchLane = errors.New("uxp: no such lane")

	// ErrBadDeadline is returned by Conn.WriteWithDeadline and
	// Conn.WriteLaneWithDeadline for a deadline that is not positive.
	ErrBadDeadline = errors.New("uxp: deadline must be positive")

	// ErrHandshakeFailed is returned by Client.Start when no session could
	// be established: the server did not answer with a valid response before
	// the handshake timeout (which is what a wrong pinned server key or a
	// man in the middle looks like), or the response failed to
	// authenticate. No data has flowed when this is returned.
	ErrHandshakeFailed = errors.New("uxp: handshake failed")

	// ErrConnClosed is returned by Conn methods after Close was called
	// locally. It unwraps to net.ErrClosed.
	ErrConnClosed = fmt.Errorf("uxp: connection closed: %w", net.ErrClosed)

	// ErrPeerClosed matches (errors.Is) every *CloseError whose Remote is
	// set: the peer sent an authenticated close packet. Sessions end with
	// the *CloseError, which carries the peer's code and reason; it unwraps
	// to net.ErrClosed.
	ErrPeerClosed = fmt.Errorf("uxp: closed by peer: %w", net.ErrClosed)

	// ErrServerClosed ends every session of a Server when Server.Close is
	// called. It unwraps to net.ErrClosed.
	ErrServerClosed = fmt.Errorf("uxp: server closed: %w", net.ErrClosed)

	// ErrCounterExhausted ends a session that would otherwise have to reuse
	// a nonce: its send counter reached the replay window's limit. It
	// unwraps to net.ErrClosed.
	ErrCounterExhausted = fmt.Errorf("uxp: packet counter exhausted: %w", net.ErrClosed)

	// ErrAlreadyStarted is returned by a second call to Start.
	ErrAlreadyStarted = errors.New("uxp: already started")

	// ErrFECRefused is returned by Client.Start when the server's FEC
	// policy does not allow the FEC settings the client asked for.
	ErrFECRefused = errors.New("uxp: server refused the requested FEC settings")

	// ErrServerFull is returned by Client.Start when the server already
	// holds Config.MaxSessions established sessions, or a Listener's
	// backlog of sessions waiting for Accept is full. The refusal is authenticated: it
	// comes from the server whose key the client pinned.
	ErrServerFull = errors.New("uxp: server refused the session: MaxSessions reached")

	// ErrClientRejected is returned by Client.Start when the server's
	// client key policy (Config.Identity) does not accept this client:
	// its key is not allowed, or it has none and the server requires one.
	// The refusal is authenticated.
	ErrClientRejected = errors.New("uxp: server refused the client key")

	// ErrStatelessReset ends a client session when the server answered
	// with a valid stateless reset: it no longer knows the session (it
	// restarted, or expired the session). It unwraps to net.ErrClosed.
	ErrStatelessReset = fmt.Errorf("uxp: session reset by the server (it no longer knows the session): %w", net.ErrClosed)
)

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field  string // the Config field, e.g. "KCP.MTU"
	Reason string
}

func (e *ConfigError) Error() string { return "uxp: invalid config " + e.Field + ": " + e.Reason }

// IdleTimeoutError ends a session when nothing authenticated arrived from
// the peer for Config.IdleTimeout. It is a net.Error whose Timeout method
// reports true, and it unwraps to net.ErrClosed.
type IdleTimeoutError struct{}

func (*IdleTimeoutError) Error() string   { return "uxp: idle timeout: nothing heard from the peer" }
func (*IdleTimeoutError) Timeout() bool   { return true }
func (*IdleTimeoutError) Temporary() bool { return false }
func (*IdleTimeoutError) Unwrap() error   { return net.ErrClosed }

// HandshakeTimeoutError is returned by Client.Start when the handshake did
// not complete within Config.HandshakeTimeout or the context's deadline.
// It is a net.Error whose Timeout method reports true, and errors.Is
// matches it against ErrHandshakeFailed.
type HandshakeTimeoutError struct {
	Attempts int // initiations sent
}

func (e *HandshakeTimeoutError) Error() string {
	return fmt.Sprintf("uxp: handshake failed: no valid response after %d initiations (wrong server key, server down, or path blocked)", e.Attempts)
}
func (*HandshakeTimeoutError) Timeout() bool        { return true }
func (*HandshakeTimeoutError) Temporary() bool      { return false }
func (*HandshakeTimeoutError) Is(target error) bool { return target == ErrHandshakeFailed }

var (
	_ net.Error = (*HandshakeTimeoutError)(nil)
	_ net.Error = (*IdleTimeoutError)(nil)
)

// CallbackPanicError ends a session whose user callback panicked. Only that
// session is closed. It unwraps to net.ErrClosed.
type CallbackPanicError struct {
	Callback string // e.g. "OnNewDataComing"
	Value    any    // the value passed to panic
}

func (e *CallbackPanicError) Error() string {
	return fmt.Sprintf("uxp: %s callback panicked: %v", e.Callback, e.Value)
}
func (*CallbackPanicError) Unwrap() error { return net.ErrClosed }

// ProtocolError ends a session whose peer broke the protocol after
// authenticating (a message larger than this side's MaxMessageSize). It
// unwraps to net.ErrClosed.
type ProtocolError struct {
	Reason string
}

func (e *ProtocolError) Error() string { return "uxp: protocol error: " + e.Reason }
func (*ProtocolError) Unwrap() error   { return net.ErrClosed }

// DeadlineError is returned by StreamConn's Read or Write when its
// deadline passed. It is a net.Error whose Timeout method reports true,
// and errors.Is matches it against os.ErrDeadlineExceeded, like the
// standard library's own connections. The StreamConn stays usable: set a
// new deadline and retry.
type DeadlineError struct {
	Op string // "read" or "write"
}

func (e *DeadlineError) Error() string      { return "uxp: " + e.Op + ": i/o timeout" }
func (*DeadlineError) Timeout() bool        { return true }
func (*DeadlineError) Temporary() bool      { return true }
func (*DeadlineError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

var _ net.Error = (*DeadlineError)(nil)

// RejectError is returned by Client.Start, Dial and Dialer.Dial when the
// server's ConnectHandler rejected the session. Code and Reason are the
// application's, received authenticated from the server whose key the
// client pinned. A client that sent no Config.ConnectData receives at
// most 25 bytes of the reason (its initiation leaves no more room; see
// docs/protocol.md).
type RejectError struct {
	Code   uint16
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("uxp: server rejected the session: code %d: %q", e.Code, e.Reason)
}

// IncompatibleError is returned by Client.Start, Dial and Dialer.Dial
// when the two sides' configurations cannot make one session: Field names
// what differs ("Lanes": the lane counts differ; "MTU": the smaller of the
// two packet sizes cannot carry this side's MaxMessageSize; "Cipher": the
// two sides pinned different Config.Cipher values, given as their Cipher
// numbers), Local and Remote are the client's and the server's values. The server counts the
// refusal in HandshakeStats.RefusedIncompatible and traces it.
type IncompatibleError struct {
	Field  string
	Local  int
	Remote int
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("uxp: incompatible configuration: %s is %d here and %d on the peer", e.Field, e.Local, e.Remote)
}

// Close codes, carried by the authenticated close frame
// (docs/protocol.md, "Close frame") and reported in CloseError.Code.
// Codes below CloseApplicationMin are the SDK's own; of those, an
// application may send only CloseNormal. /* Specification constants */
const (
	// CloseNormal: an orderly end. A session is closed with it only once
	// every message the closing side wrote was acknowledged, and the
	// receiver checks that it holds them all; a stream then reads io.EOF.
	CloseNormal uint16 = 0
	// CloseServerShutdown: the server is shutting down (Server.Shutdown,
	// Server.Close, Listener.Close for sessions it never handed out).
	CloseServerShutdown uint16 = 1
	// CloseProtocolError: the peer broke the protocol after authenticating,
	// or its packet counter ran out.
	CloseProtocolError uint16 = 2
	// CloseServerFull: the server filled up (MaxSessions, or a Listener's
	// backlog) before it could announce the session.
	CloseServerFull uint16 = 3
	// CloseAbandoned: the closing side gave up before everything it wrote
	// was acknowledged (Config.CloseLinger ran out): data was lost.
	CloseAbandoned uint16 = 4
	// CloseIdleTimeout: nothing was heard from the peer for
	// Config.IdleTimeout.
	CloseIdleTimeout uint16 = 5
	// CloseCallbackPanic: a callback of the closing side panicked.
	CloseCallbackPanic uint16 = 6

	// CloseApplicationMin is the first code of the range, up to 0xffff,
	// that applications define for themselves (Conn.CloseWithError).
	CloseApplicationMin uint16 = 0x100

	// MaxCloseReason is the longest reason, in bytes, a close frame
	// carries.
	MaxCloseReason = 256
)

// CloseError is how a session ended when a close code is known: the peer
// closed it (Remote), or this side did with CloseWithError or gave up on
// unacknowledged data (CloseAbandoned). It unwraps to net.ErrClosed.
// errors.Is matches a remote CloseError against ErrPeerClosed, a local one
// against ErrConnClosed, and one with CloseServerFull against
// ErrServerFull.
//
// A stream (StreamConn.Read) reports io.EOF instead of a remote
// CloseError with CloseNormal, and only then: every other end of a
// session is an error.
type CloseError struct {
	Code   uint16 // one of the Close constants, or an application code
	Reason string // at most MaxCloseReason bytes; may be empty
	Remote bool   // the peer closed the session
}

func (e *CloseError) Error() string {
	who := "closed locally"
	if e.Remote {
		who = "closed by peer"
	}
	s := fmt.Sprintf("uxp: %s (%s)", who, closeCodeName(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

func (*CloseError) Unwrap() error { return net.ErrClosed }

func (e *CloseError) Is(target error) bool {
	switch target {
	case ErrPeerClosed:
		return e.Remote
	case ErrConnClosed:
		return !e.Remote
	case ErrServerFull:
		return e.Code == CloseServerFull
	case ErrServerClosed:
		return !e.Remote && e.Code == CloseServerShutdown
	}
	return false
}

// closeCodeName names a close code for errors and traces.
func closeCodeName(code uint16) string {
	switch code {
	case CloseNormal:
		return "normal"
	case CloseServerShutdown:
		return "server shutdown"
	case CloseProtocolError:
		return "protocol error"
	case CloseServerFull:
		return "server full"
	case CloseAbandoned:
		return "abandoned: data was not delivered"
	case CloseIdleTimeout:
		return "idle timeout"
	case CloseCallbackPanic:
		return "callback panic"
	}
	if code >= CloseApplicationMin {
		return fmt.Sprintf("application code %d", code)
	}
	return fmt.Sprintf("code %d", code)
}

// orderlyEnd reports whether err is the peer's orderly close: every byte
// it wrote was delivered. Only that end reads as io.EOF on a stream.
func orderlyEnd(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Remote && ce.Code == CloseNormal
}

// ErrBadCloseCode is returned by Conn.CloseWithError for a code reserved
// for the SDK (below CloseApplicationMin, other than CloseNormal) or a
// reason longer than MaxCloseReason. The session is not closed.
var ErrBadCloseCode = errors.New("uxp: close code reserved for the SDK, or reason too long")

// ErrServerShuttingDown is returned by Client.Start (and Dial, DialConn)
// when the server refused the session because it is shutting down
// (Server.Shutdown, Listener.Close). The refusal is authenticated.
var ErrServerShuttingDown = errors.New("uxp: server refused the session: shutting down")
