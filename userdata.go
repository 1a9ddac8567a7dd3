package uxp

import "sync/atomic"

// connExt is the state of the game-server API (user data, writability,
// broadcast, quality, unhandled-event counters) that a Conn carries. It
// lives in one field of Conn so that the session engine's own fields stay
// apart; each file that uses it documents its part.
type connExt struct {
	user atomic.Pointer[userDataBox] // SetUserData

	wr writableState // writable.go

	// Broadcast messages queued with a pendShared* entry in Conn.pend,
	// in the same order (broadcast.go). sharedPend is guarded by Conn.mu;
	// sharedTaken is the shard's copy while it pumps.
	sharedPend  []*sharedMsg
	sharedTaken []*sharedMsg
	sharedNext  int

	q qualityState // quality.go

	unhandledDgrams, unhandledLanes atomic.Uint64 // unhandled.go
	warnedUnhandled                 atomic.Bool
}

type userDataBox struct{ v any }

// SetUserData attaches v to the session, for the application's own
// per-session state (a player, a room), so it needs no map of its own
// beside the SDK's. It is safe to call from any goroutine, callbacks
// included; the last call wins. The SDK never looks at v.
func (c *Conn) SetUserData(v any) { c.ext.user.Store(&userDataBox{v}) }

// UserData returns the value the last SetUserData stored, or nil. It is
// safe to call from any goroutine and costs one atomic load; the value
// stays readable after the session ended.
func (c *Conn) UserData() any {
	if b := c.ext.user.Load(); b != nil {
		return b.v
	}
	return nil
}

// Conn returns the live session with session ID id, as OnNewConnComing
// announced it, or nil if the Server has no such session (never had, not
// yet announced, or already ended). It is safe for concurrent use and
// costs two short lock holds; a session it returns may end at any moment
// after, as with any *Conn.
func (s *Server) Conn(id uint32) *Conn {
	c := s.ep.table.get(id)
	if c == nil {
		return nil
	}
	s.live.mu.Lock()
	_, ok := s.live.m[c]
	s.live.mu.Unlock()
	if !ok {
		return nil // half-open, or ended
	}
	return c
}
