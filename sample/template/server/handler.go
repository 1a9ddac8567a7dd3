package main

import (
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/uxp-go/uxp"
)

// serverHandler receives the Server's events. OnNewConnComing and
// OnConnClosed run on the update worker that owns the session; OnClosed
// runs on the goroutine that called Server.Close, or on the read loop if
// the socket failed. None of them may block for long.
type serverHandler struct {
	log    *slog.Logger
	closed chan error // capacity 1: OnClosed's error, if the socket failed
}

// maxNameLen bounds the player name a client sends as its connect data.
const maxNameLen = 32

// Reject codes this server sends (application-defined).
const (
	rejectNoName  uint16 = 1
	rejectBadName uint16 = 2
)

var _ uxp.ConnectHandler = (*serverHandler)(nil) // OnConnectRequest is optional: check the spelling

// OnConnectRequest decides about a client before any session exists. It
// runs on the server's handshake goroutine, so it must be quick; slow
// checks (an auth backend) return uxp.DeferConnect and answer later with
// req.Accept or req.Reject. Here the connect data is the player name.
func (h *serverHandler) OnConnectRequest(req *uxp.ConnectRequest) uxp.ConnectDecision {
	name := req.ConnectData()
	switch {
	case len(name) == 0:
		return uxp.RejectConnect(rejectNoName, "send a player name (-name)")
	case len(name) > maxNameLen || !utf8.Valid(name):
		return uxp.RejectConnect(rejectBadName, "player name must be UTF-8, at most 32 bytes")
	}
	h.log.Info("OnConnectRequest", "remote", req.RemoteAddr(), "name", string(name))
	return uxp.AcceptConnect([]byte("welcome, " + string(name)))
}

// OnNewConnComing is called once the client has proved it holds the
// session keys. Set the session's handler here; OnReady follows at once.
// The session's own state goes in its user data, where every callback
// (and any other goroutine holding the *Conn) finds it without a map.
func (h *serverHandler) OnNewConnComing(c *uxp.Conn) {
	log := h.log.With("conn", c.ID(), "name", string(c.ConnectData()))
	log.Info("OnNewConnComing", "remote", c.RemoteAddr(), "cipher", c.Cipher())
	c.SetUserData(&session{log: log, since: time.Now()})
	c.SetHandler(echoHandler{})
}

// OnConnClosed is called after the session's own OnClosed. err unwraps to
// net.ErrClosed.
func (h *serverHandler) OnConnClosed(c *uxp.Conn, err error) {
	st, s := c.Stats(), sessionOf(c)
	s.log.Info("OnConnClosed", "remote", c.RemoteAddr(), "err", err, "lasted", time.Since(s.since).Round(time.Millisecond),
		"echoed", s.echoed, "dropped", s.dropped,
		"msgs_in", st.MessagesReceived, "msgs_out", st.MessagesSent, "retransmissions", st.Retransmissions)
}

// OnClosed is called once when the server has stopped: err is nil after
// Server.Close, or the socket's failure.
func (h *serverHandler) OnClosed(err error) {
	h.log.Info("OnClosed", "err", err)
	if err != nil {
		h.closed <- err // capacity 1 and called once: never blocks
	}
}

// session is one session's state, kept as its user data
// (Conn.SetUserData). Its counters are written only by the session's
// callbacks, which run one at a time; OnConnClosed reads them after the
// last one.
type session struct {
	log     *slog.Logger
	since   time.Time
	echoed  int
	dropped int
}

func sessionOf(c *uxp.Conn) *session { return c.UserData().(*session) }

// echoHandler is every session's handler: it has no state of its own (the
// session's is its user data). Its callbacks run one at a time on the
// session's worker. Besides ConnHandler it implements the optional
// WritableHandler; the assertion below catches a misspelled method name at
// compile time.
type echoHandler struct{}

var _ uxp.WritableHandler = echoHandler{}

func (echoHandler) OnReady(c *uxp.Conn) {
	sessionOf(c).log.Info("OnReady", "remote", c.RemoteAddr())
}

// OnNewDataComing echoes data. data is only valid during the call, but
// Write copies it, so no copy is needed here.
func (echoHandler) OnNewDataComing(c *uxp.Conn, data []byte) {
	s := sessionOf(c)
	_, err := c.Write(data)
	switch {
	case err == nil:
		s.echoed++
		s.log.Debug("echoed", "bytes", len(data))
	case errors.Is(err, uxp.ErrWouldBlock):
		// Write never blocks: the send queue is full because the client
		// reads slower than it writes. This template drops the echo (and
		// OnWritable reports when there is room again); a real server
		// would keep a bounded backlog, or close a client that never
		// catches up.
		s.dropped++
		s.log.Warn("send queue full, echo dropped", "bytes", len(data))
	default:
		// The session is ending; OnClosed follows.
		s.log.Debug("echo failed", "err", err)
	}
}

// OnWritable is called once after a Write returned ErrWouldBlock, when the
// send queue has drained to half its size.
func (echoHandler) OnWritable(c *uxp.Conn) {
	sessionOf(c).log.Info("OnWritable: send queue has room again")
}

func (echoHandler) OnClosed(c *uxp.Conn, err error) {
	sessionOf(c).log.Info("OnClosed", "err", err)
}
