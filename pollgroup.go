package uxp

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Poll groups: the events of many sessions, copied into pooled buffers and
// queued, for a game loop that drains them on its own goroutine once per
// tick (as GameNetworkingSockets' ReceiveMessagesOnPollGroup, ENet's
// enet_host_service and LiteNetLib's PollEvents do) instead of reacting
// in callbacks on the SDK's workers.
//
// The queue is bounded (PollGroupConfig). When it is full:
//   - reliable messages apply backpressure: the session stops taking
//     messages out of its lanes (they wait in KCP, whose receive window
//     then closes, so the peer slows down), until Poll has drained the
//     queue to half its bounds. Nothing is lost. (A peer's close hands over
//     what its lanes still hold, at most a receive window per session,
//     past the bound.)
//   - datagrams are dropped and counted in PollGroupStats.DatagramsDropped:
//     they are unreliable anyway, and a stale one is worth less than the
//     queue room.
//   - connected, writable and closed events are always queued: a session
//     has at most one of each at a time.

// PollEventKind says what a PollEvent reports.
type PollEventKind uint8

// The kinds of PollEvent.
const (
	// PollConnected: the session is established (its OnReady).
	PollConnected PollEventKind = iota + 1
	// PollMessage: a reliable message; Lane is its lane, Data the bytes.
	PollMessage
	// PollDatagram: an unreliable datagram; Data is the bytes.
	PollDatagram
	// PollWritable: a session that returned ErrWouldBlock has room again
	// (its OnWritable).
	PollWritable
	// PollClosed: the session ended; Err says why (its OnClosed). It is
	// the session's last event.
	PollClosed
)

// String returns the kind's name: "connected", "message", and so on.
func (k PollEventKind) String() string {
	switch k {
	case PollConnected:
		return "connected"
	case PollMessage:
		return "message"
	case PollDatagram:
		return "datagram"
	case PollWritable:
		return "writable"
	case PollClosed:
		return "closed"
	}
	return fmt.Sprintf("PollEventKind(%d)", uint8(k))
}

// PollEvent is one queued event of a poll group.
type PollEvent struct {
	Kind PollEventKind
	Conn *Conn
	// Lane is the lane of a PollMessage.
	Lane int
	// Data is the payload of a PollMessage or PollDatagram. It stays valid
	// until Release; copy it to keep it longer.
	Data []byte
	// Err is why the session ended, for PollClosed; it unwraps to
	// net.ErrClosed.
	Err error

	buf *pollBuf // pooled storage of Data, or nil
	gen uint32   // buf's generation when this event took it
}

// Release returns the event's buffer to the pool. Data must not be used
// afterwards, in this value or any copy of it. Release is idempotent,
// also across copies of one event (a range loop's copy and the slice
// element): the first call returns the buffer, later ones do nothing.
// It is harmless for events without data; not releasing an event only
// costs a garbage-collected allocation later.
func (e *PollEvent) Release() {
	if e.buf != nil {
		// The generation makes a second Release, through a copy, a no-op
		// even after the buffer went to another event: returning it twice
		// would hand one buffer to two events.
		if e.buf.gen.CompareAndSwap(e.gen, e.gen+1) {
			putPollBuf(e.buf)
		}
		e.buf = nil
	}
	e.Data = nil
}

// PollGroupConfig bounds a poll group's queue. A nil *PollGroupConfig
// means the defaults.
type PollGroupConfig struct {
	// MaxEvents bounds the queued message and datagram events. Zero means
	// 4096. Negative is invalid.
	MaxEvents int
	// MaxBytes bounds the payload bytes of the queued events. Zero means
	// 4 MiB. Negative is invalid.
	MaxBytes int
}

/* Implementation constants */
const (
	defaultPollEvents = 4096
	defaultPollBytes  = 4 << 20
	// pollBufSize is the one size class of the poll buffer pool: room for
	// a datagram of the default MTU and for typical game messages. Larger
	// messages get a buffer of their own, which Release leaves to the
	// garbage collector.
	pollBufSize = 2048
)

// pollBuf is one pooled payload buffer.
type pollBuf struct {
	b   []byte
	gen atomic.Uint32 // bumped by each Release
}

var pollBufPool = sync.Pool{New: func() any { return &pollBuf{b: make([]byte, pollBufSize)} }}

// getPollBuf returns storage for n bytes: a pooled buffer and its current
// generation, or (for n > pollBufSize) a slice of its own and a nil
// pollBuf.
func getPollBuf(n int) (*pollBuf, uint32, []byte) {
	if n > pollBufSize {
		return nil, 0, make([]byte, n)
	}
	p := pollBufPool.Get().(*pollBuf)
	return p, p.gen.Load(), p.b[:n]
}

// putPollBuf rejects foreign buffers: only the pool's size class goes back.
func putPollBuf(p *pollBuf) {
	if cap(p.b) != pollBufSize {
		return
	}
	p.b = p.b[:pollBufSize]
	pollBufPool.Put(p)
}

// PollGroupStats is a snapshot of a poll group's counters.
type PollGroupStats struct {
	// Queued and QueuedBytes are the events (and their payload bytes)
	// waiting for Poll.
	Queued, QueuedBytes int
	// Events counts every event queued.
	Events uint64
	// DatagramsDropped counts datagrams dropped because the queue was
	// full.
	DatagramsDropped uint64
	// Backpressure counts the times a session stopped taking reliable
	// messages because the queue was full.
	Backpressure uint64
}

// PollGroup queues the events of the sessions added to it for a loop that
// drains them with Poll, on the loop's own goroutine, instead of handling
// them in callbacks on the SDK's workers (as GameNetworkingSockets' poll
// groups, ENet's host service and LiteNetLib's PollEvents do). The
// group's handlers run on the workers and only copy each message or
// datagram into a pooled buffer and queue an event; a PollEvent's Data
// stays valid until its Release.
//
// The queue is bounded by PollGroupConfig. When it is full, reliable
// messages wait in the sender's lanes (the session's receive window
// closes; nothing is lost, and delivery resumes once Poll has drained the
// queue to half), datagrams are dropped and counted in
// PollGroupStats.DatagramsDropped, and connected, writable and closed
// events are queued anyway (a session has at most one of each at a time).
//
// Its methods are safe for concurrent use, except that two Polls must not
// overlap (they share the result slice): call Poll from one goroutine,
// the game loop, or use PollInto.
type PollGroup struct {
	maxEvents, maxBytes int
	ready               chan struct{} // capacity 1: the queue became non-empty

	mu     sync.Mutex
	q      []PollEvent // queue is q[head:]
	head   int
	data   int // message and datagram events queued
	bytes  int
	paused map[*pollHandler]struct{} // sessions refused by recvFull
	out    []PollEvent               // Poll's result

	events, dropped, backpressure atomic.Uint64
}

// NewPollGroup makes a poll group. cfg may be nil.
func NewPollGroup(cfg *PollGroupConfig) (*PollGroup, error) {
	var c PollGroupConfig
	if cfg != nil {
		c = *cfg
	}
	if c.MaxEvents < 0 {
		return nil, &ConfigError{Field: "PollGroupConfig.MaxEvents", Reason: fmt.Sprintf("negative (%d)", c.MaxEvents)}
	}
	if c.MaxBytes < 0 {
		return nil, &ConfigError{Field: "PollGroupConfig.MaxBytes", Reason: fmt.Sprintf("negative (%d)", c.MaxBytes)}
	}
	g := &PollGroup{
		maxEvents: pick(c.MaxEvents, defaultPollEvents),
		maxBytes:  pick(c.MaxBytes, defaultPollBytes),
		ready:     make(chan struct{}, 1),
		paused:    make(map[*pollHandler]struct{}),
	}
	return g, nil
}

// Handler returns a new ConnHandler that feeds the group, for one client
// session: pass it to Dial, Dialer.Dial or NewClient to put the session in
// the group from the start (its PollConnected comes first). Use a new one
// for each session.
func (g *PollGroup) Handler() ConnHandler { return &pollHandler{g: g} }

// Add puts a server session in the group: call it in OnNewConnComing
// (the PollConnected event follows, as OnReady does). It replaces the
// session's handler, as SetHandler does. Safe from any goroutine.
func (g *PollGroup) Add(c *Conn) {
	h := &pollHandler{g: g}
	h.c.Store(c)
	c.SetHandler(h)
}

// ServerHandler returns a ServerHandler that adds every new session to the
// group, for a server whose events all go through it.
func (g *PollGroup) ServerHandler() ServerHandler { return pollServerHandler{g} }

// Ready returns a channel that receives a value when an event is queued
// into an empty queue, for a loop that sleeps between events rather than
// ticking. A fixed-tick loop need not use it.
func (g *PollGroup) Ready() <-chan struct{} { return g.ready }

// Poll takes up to max queued events (all of them if max <= 0) in arrival
// order; the events of one session are in the order they happened. The
// returned slice is the group's own and is reused by the next Poll: read
// it, Release each event, and do not keep it. Each event's Data stays
// valid until its Release, even across later Polls. Poll does not block;
// it returns an empty slice when nothing is queued.
func (g *PollGroup) Poll(max int) []PollEvent {
	g.mu.Lock()
	n := len(g.q) - g.head
	if max > 0 && n > max {
		n = max
	}
	out := append(g.out[:0], g.q[g.head:g.head+n]...)
	g.out = out
	g.mu.Unlock()
	g.taken(n)
	return out
}

// PollInto is Poll into the caller's slice: it fills dst with up to
// len(dst) events and returns how many. It does not allocate.
func (g *PollGroup) PollInto(dst []PollEvent) int {
	g.mu.Lock()
	n := copy(dst, g.q[g.head:])
	g.mu.Unlock()
	g.taken(n)
	return n
}

// taken removes the first n events, whose copies the caller now owns, and
// resumes sessions held back by backpressure once the queue is at half its
// bounds.
func (g *PollGroup) taken(n int) {
	if n == 0 {
		return
	}
	var resume []*pollHandler
	g.mu.Lock()
	for i := g.head; i < g.head+n; i++ {
		e := &g.q[i]
		if e.Kind == PollMessage || e.Kind == PollDatagram {
			g.data--
			g.bytes -= len(e.Data)
		}
		*e = PollEvent{}
	}
	g.head += n
	if g.head == len(g.q) {
		g.q, g.head = g.q[:0], 0
	} else if g.head > cap(g.q)/2 {
		k := copy(g.q, g.q[g.head:])
		clear(g.q[k:])
		g.q, g.head = g.q[:k], 0
	}
	if len(g.paused) > 0 && g.data <= g.maxEvents/2 && g.bytes <= g.maxBytes/2 {
		resume = make([]*pollHandler, 0, len(g.paused))
		for h := range g.paused {
			resume = append(resume, h)
		}
		clear(g.paused)
	}
	g.mu.Unlock()
	for _, h := range resume {
		h.c.Load().resumeRecv()
	}
}

// Stats returns a snapshot of the group's counters.
func (g *PollGroup) Stats() PollGroupStats {
	g.mu.Lock()
	st := PollGroupStats{Queued: len(g.q) - g.head, QueuedBytes: g.bytes}
	g.mu.Unlock()
	st.Events = g.events.Load()
	st.DatagramsDropped = g.dropped.Load()
	st.Backpressure = g.backpressure.Load()
	return st
}

// push queues one event; a data event's payload is copied into a pooled
// buffer. A datagram that finds the queue full is dropped and counted.
func (g *PollGroup) push(kind PollEventKind, c *Conn, lane int, data []byte, err error) {
	ev := PollEvent{Kind: kind, Conn: c, Lane: lane, Err: err}
	isData := kind == PollMessage || kind == PollDatagram
	if isData {
		ev.buf, ev.gen, ev.Data = getPollBuf(len(data))
		copy(ev.Data, data)
	}
	g.mu.Lock()
	if kind == PollDatagram && g.fullLocked() {
		g.mu.Unlock()
		ev.Release()
		g.dropped.Add(1)
		return
	}
	wasEmpty := len(g.q) == g.head
	g.q = append(g.q, ev)
	if isData {
		g.data++
		g.bytes += len(data)
	}
	g.mu.Unlock()
	g.events.Add(1)
	if wasEmpty {
		notify(g.ready)
	}
}

func (g *PollGroup) fullLocked() bool { return g.data >= g.maxEvents || g.bytes >= g.maxBytes }

// pollHandler is the group's ConnHandler for one session. Its methods run
// on the session's worker and only copy and queue.
type pollHandler struct {
	g *PollGroup
	c atomic.Pointer[Conn] // set by Add, or by OnReady for a dialled session
}

func (h *pollHandler) OnReady(c *Conn) {
	h.c.CompareAndSwap(nil, c)
	h.g.push(PollConnected, c, 0, nil, nil)
}

func (h *pollHandler) OnNewDataComing(c *Conn, data []byte) {
	h.g.push(PollMessage, c, 0, data, nil)
}

func (h *pollHandler) OnNewLaneDataComing(c *Conn, lane int, data []byte) {
	h.g.push(PollMessage, c, lane, data, nil)
}

func (h *pollHandler) OnNewDatagramComing(c *Conn, msg []byte) {
	h.g.push(PollDatagram, c, 0, msg, nil)
}

func (h *pollHandler) OnWritable(c *Conn) { h.g.push(PollWritable, c, 0, nil, nil) }

func (h *pollHandler) OnClosed(c *Conn, err error) {
	g := h.g
	g.mu.Lock()
	delete(g.paused, h)
	g.mu.Unlock()
	g.push(PollClosed, c, 0, nil, err)
}

// recvFull implements flowHandler: backpressure for reliable messages. A
// session refused here is resumed by taken.
func (h *pollHandler) recvFull() bool {
	g := h.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.paused[h]; ok {
		return true
	}
	if !g.fullLocked() || h.c.Load() == nil {
		return false
	}
	g.paused[h] = struct{}{}
	g.backpressure.Add(1)
	return true
}

func (h *pollHandler) sendRoom() {}

// pollServerHandler is PollGroup.ServerHandler: it only adds sessions;
// their ends arrive as PollClosed through pollHandler.OnClosed.
type pollServerHandler struct{ g *PollGroup }

func (s pollServerHandler) OnNewConnComing(c *Conn)   { s.g.Add(c) }
func (s pollServerHandler) OnConnClosed(*Conn, error) {}
func (s pollServerHandler) OnClosed(error)            {}

var (
	_ ConnHandler     = (*pollHandler)(nil)
	_ LaneHandler     = (*pollHandler)(nil)
	_ DatagramHandler = (*pollHandler)(nil)
	_ WritableHandler = (*pollHandler)(nil)
	_ flowHandler     = (*pollHandler)(nil)
)
