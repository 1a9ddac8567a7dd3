package uxp

import (
	"encoding/binary"
	"errors"
	"sync"
)

// Broadcast: one message to many sessions. The message is copied once,
// into a sharedMsg that every session's queue points at; each session's
// worker then seals it for its own session, as it would a Write. Sessions
// are posted to their workers one worker at a time (one lock and one
// wake-up per worker, not per session).

// Kinds of queued writes whose bytes live in a sharedMsg rather than in
// Conn.pend (see Conn.write): the entry in pend has a zero length, and
// takes the next message of connExt.sharedPend.
const (
	pendShared         byte = 0x80 // a flag on the kind
	pendSharedReliable      = pendShared + pendReliable
	pendSharedDatagram      = pendShared + pendDatagram
	pendSharedLatest        = pendShared + pendLatest
)

// sharedMsg is one broadcast message, shared read-only by every session
// it was queued on.
type sharedMsg struct{ data []byte }

// BroadcastResult reports how a Broadcast went.
type BroadcastResult struct {
	// Queued counts the sessions the message was queued on.
	Queued int
	// Failed lists the sessions it was not queued on, with why:
	// ErrWouldBlock (the session's send queue is full), ErrNoSuchLane,
	// ErrMessageTooLarge, ErrNotServerSession, or the error that ended the
	// session. It is nil when every session took the message.
	Failed []BroadcastFailure
}

// BroadcastFailure is one session a Broadcast could not queue a message on.
type BroadcastFailure struct {
	Conn *Conn
	Err  error
}

// ErrNotServerSession is a BroadcastFailure's error for a *Conn that is
// not a session of the Server broadcasting (a nil Conn included).
var ErrNotServerSession = errors.New("uxp: not a session of this server")

// Broadcast queues msg as one reliable message on lane 0 of every session
// in conns, as Write would, but copies msg only once and wakes each update
// worker once. It never blocks: a session whose send queue is full is
// reported in the result (ErrWouldBlock; its WritableHandler fires when it
// has room, as after a Write) and the others still get the message. The
// caller may reuse msg and conns once Broadcast returns. An empty msg
// sends nothing (Queued is 0, Failed nil). Safe for
// concurrent use, callbacks included; the messages of one Broadcast are
// ordered, per session, with that session's other writes.
func (s *Server) Broadcast(conns []*Conn, msg []byte) BroadcastResult {
	return s.broadcast(conns, pendSharedReliable, 0, msg)
}

// BroadcastLane is Broadcast on lane (with the lane's default deadline,
// as WriteLane). A lane outside [0, Lanes()) fails every session with
// ErrNoSuchLane.
func (s *Server) BroadcastLane(conns []*Conn, lane int, msg []byte) BroadcastResult {
	return s.broadcast(conns, pendSharedReliable, lane, msg)
}

// BroadcastDatagram is Broadcast for an unreliable datagram (as
// WriteDatagram): at most once per session, possibly lost.
func (s *Server) BroadcastDatagram(conns []*Conn, msg []byte) BroadcastResult {
	return s.broadcast(conns, pendSharedDatagram, 0, msg)
}

// BroadcastDatagramLatest is BroadcastDatagram on a latest-only channel
// (as WriteDatagramLatest): each session numbers the channel on its own.
func (s *Server) BroadcastDatagramLatest(conns []*Conn, channel uint8, msg []byte) BroadcastResult {
	return s.broadcast(conns, pendSharedLatest, int(channel), msg)
}

// postScratch holds per-worker lists of sessions to post, reused across
// broadcasts.
var postScratch = sync.Pool{New: func() any { return new([][]*Conn) }}

func (s *Server) broadcast(conns []*Conn, kind byte, arg int, msg []byte) BroadcastResult {
	var res BroadcastResult
	fail := func(c *Conn, err error) { res.Failed = append(res.Failed, BroadcastFailure{c, err}) }
	set := s.ep.set
	limit := set.maxMessage
	if kind != pendSharedReliable {
		limit = set.maxDatagram()
	}
	var err error
	switch {
	case kind == pendSharedReliable && (arg < 0 || arg >= len(set.lanes)):
		err = ErrNoSuchLane
	case len(msg) > limit:
		err = ErrMessageTooLarge
	}
	if err != nil {
		for _, c := range conns {
			fail(c, err)
		}
		return res
	}
	var deadline int64
	if kind == pendSharedReliable {
		deadline = laneDeadlineOf(s.ep, arg)
	}
	if len(msg) == 0 {
		return res // an empty message sends nothing, as with Write
	}
	shared := &sharedMsg{data: append([]byte(nil), msg...)}
	scratch := postScratch.Get().(*[][]*Conn)
	byShard := *scratch
	for len(byShard) < len(s.ep.shards) {
		byShard = append(byShard, nil)
	}
	for _, c := range conns {
		if c == nil || c.ep != s.ep {
			fail(c, ErrNotServerSession)
			continue
		}
		if kind != pendSharedReliable && len(msg) > c.MaxDatagramSize() {
			// This session's packet size is smaller (negotiate.go, pmtud.go).
			fail(c, ErrMessageTooLarge)
			continue
		}
		if err := c.queueShared(kind, arg, deadline, shared); err != nil {
			fail(c, err)
			continue
		}
		res.Queued++
		byShard[c.shard.idx] = append(byShard[c.shard.idx], c)
	}
	for i, list := range byShard {
		if len(list) > 0 {
			s.ep.shards[i].postMany(list)
			clear(list)
			byShard[i] = list[:0]
		}
	}
	*scratch = byShard
	postScratch.Put(scratch)
	return res
}

// queueShared is Conn.write for a broadcast message: the same checks, but
// only a header goes into pend. The caller posts the session.
func (c *Conn) queueShared(kind byte, arg int, deadline int64, m *sharedMsg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.closeReq:
		return ErrConnClosed
	}
	queued := c.pendBytes + int(c.kcpQueued.Load())
	if queued > 0 && queued+len(m.data) > c.ep.set.sendQueue {
		c.ext.wr.blocked.Store(true)
		return ErrWouldBlock
	}
	c.pend = binary.LittleEndian.AppendUint32(c.pend, 0)
	c.pend = append(c.pend, kind, byte(arg))
	c.pend = binary.LittleEndian.AppendUint64(c.pend, uint64(deadline))
	c.ext.sharedPend = append(c.ext.sharedPend, m)
	c.pendBytes += len(m.data)
	return nil
}

// takeShared runs in pump with c.mu held, as pump takes pend: the shared
// messages of the entries it took move to the shard's side.
func (c *Conn) takeShared() {
	if len(c.ext.sharedPend) == 0 {
		return
	}
	c.ext.sharedTaken, c.ext.sharedPend = c.ext.sharedPend, c.ext.sharedTaken[:0]
}

// nextShared runs in pump for an entry of a pendShared kind: it returns
// the entry's plain kind and its message.
func (c *Conn) nextShared(kind byte) (byte, []byte) {
	x := &c.ext
	m := x.sharedTaken[x.sharedNext]
	x.sharedTaken[x.sharedNext] = nil
	x.sharedNext++
	if x.sharedNext == len(x.sharedTaken) {
		x.sharedTaken, x.sharedNext = x.sharedTaken[:0], 0
	}
	return kind &^ pendShared, m.data
}

// postMany is post for many sessions of this shard: one lock, one wake-up.
func (s *shard) postMany(cs []*Conn) {
	s.mu.Lock()
	for _, c := range cs {
		if !c.posted {
			c.posted = true
			s.ready = append(s.ready, c)
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
