package uxp

// ServerHandler receives a Server's events.
//
// All methods except OnClosed are called on the update worker that owns
// the session concerned, with no SDK lock held. Calls for one session are
// never concurrent with each other; calls for sessions on different workers
// may be. A handler must not block for long: the worker it runs on drives
// every other session of its shard. A panic in OnNewConnComing closes only
// the session it was called for, with a *CallbackPanicError; a panic in
// OnConnClosed or OnClosed, which report an end, is only logged. Every
// recovered panic is logged with its stack and counted in
// ServerStats.CallbackPanics.
type ServerHandler interface {
	// OnNewConnComing is called once per session, after the handshake has
	// completed and the client has proved it holds the session keys (its
	// first authenticated packet arrived). Call c.SetHandler here to
	// receive the session's events; until then they go to a NopHandler.
	// OnReady on the session's handler follows immediately.
	OnNewConnComing(c *Conn)

	// OnConnClosed is called once when a session that OnNewConnComing
	// announced has ended, after its ConnHandler.OnClosed. err says why;
	// it unwraps to net.ErrClosed.
	OnConnClosed(c *Conn, err error)

	// OnClosed is called once when a started Server has stopped, on a
	// goroutine of the Server's own: after Server.Close (err is nil; Close
	// returns after OnClosed), or when the PacketConn failed (err is that
	// failure). Every OnConnClosed has been called by then. A Server closed
	// before Start never calls it.
	OnClosed(err error)
}

// ConnHandler receives one session's events. Its methods are called on the
// update worker that owns the session, one at a time, with no SDK lock
// held, so they may call Conn.Write and Conn.Close. They must not block for
// long. A panic closes the session with a *CallbackPanicError (a panic in
// OnClosed is only logged: the session has already ended); on a server it
// is also logged with its stack and counted in ServerStats.CallbackPanics.
type ConnHandler interface {
	// OnReady is called once when the session is established and can carry
	// messages: on a Client before Client.Start returns, on a Server right
	// after OnNewConnComing.
	OnReady(c *Conn)

	// OnNewDataComing is called once per message, in the order the peer
	// wrote them. data is only valid until OnNewDataComing returns: the
	// SDK reuses the buffer, so copy it to keep it.
	OnNewDataComing(c *Conn, data []byte)

	// OnClosed is called exactly once when the session ends, whatever the
	// reason: local Close (err is ErrConnClosed once everything written was
	// acknowledged, else a *CloseError with CloseAbandoned), the peer
	// closing (a *CloseError with Remote set, carrying the peer's code and
	// reason, which matches ErrPeerClosed; CloseNormal only when everything
	// the peer wrote arrived), an idle timeout (*IdleTimeoutError),
	// Server.Close (ErrServerClosed), or a panicking callback
	// (*CallbackPanicError). err always unwraps to net.ErrClosed.
	OnClosed(c *Conn, err error)
}

// LaneHandler is an optional interface of a ConnHandler: a handler that
// implements it receives the messages of every lane (lane 0 included)
// through OnNewLaneDataComing, and its OnNewDataComing is not called.
// Without it, OnNewDataComing receives the messages of every lane, and
// those of lanes other than 0 are counted in ConnStats.Unhandled (with a
// warning logged once per session), since their lane is lost.
//
// Check at compile time that your handler implements it; a method with a
// misspelled name compiles and is never called:
//
//	var _ uxp.LaneHandler = (*MyHandler)(nil)
type LaneHandler interface {
	// OnNewLaneDataComing is called once per message, in the order the
	// peer wrote them on that lane, under the same rules as
	// OnNewDataComing. lane is the lane's index in Config.Lanes. data is
	// only valid until OnNewLaneDataComing returns.
	OnNewLaneDataComing(c *Conn, lane int, data []byte)
}

// NopHandler implements ConnHandler with methods that do nothing. Embed it
// in a handler to implement only the callbacks you need.
type NopHandler struct{}

// OnReady does nothing.
func (NopHandler) OnReady(*Conn) {}

// OnNewDataComing does nothing.
func (NopHandler) OnNewDataComing(*Conn, []byte) {}

// OnClosed does nothing.
func (NopHandler) OnClosed(*Conn, error) {}

// NopServerHandler implements ServerHandler with methods that do nothing.
// Embed it in a handler to implement only the callbacks you need. (It is a
// separate type from NopHandler because the two interfaces both have an
// OnClosed method, with different arguments.)
type NopServerHandler struct{}

// OnNewConnComing does nothing.
func (NopServerHandler) OnNewConnComing(*Conn) {}

// OnConnClosed does nothing.
func (NopServerHandler) OnConnClosed(*Conn, error) {}

// OnClosed does nothing.
func (NopServerHandler) OnClosed(error) {}

var (
	_ ConnHandler   = NopHandler{}
	_ ServerHandler = NopServerHandler{}
)
