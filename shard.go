package uxp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp/internal/arq"
	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/sockio"
)

// shard is one update worker. It owns the KCP, crypto, replay and heartbeat
// state of every session assigned to it (by session ID), and keeps their
// next deadlines in one min-heap served by a single timer. No session has a
// goroutine or ticker of its own.
//
// Other goroutines reach a session through the shard: the read loop sends
// batches of datagrams on in (batch_inbound.go; arrival order is kept per
// session), and Write, Close and the handshake path post the session on
// the ready list and wake the loop.
type shard struct {
	ep     *endpoint
	idx    int // index in ep.shards
	in     chan *inboundBatch
	queued atomic.Int64  // datagrams in the batches on in (read loop adds, shard subtracts)
	wake   chan struct{} // capacity 1: a pending wake-up is enough

	mu         sync.Mutex
	ready      []*Conn // sessions with posted work, guarded by mu
	readySpare []*Conn

	// Owned by the loop goroutine.
	probeBuf []byte             // path MTU probe bodies (pmtud_conn.go), made at the first probe
	conns    map[*Conn]struct{} // every live session of the shard
	timers   connHeap
	timer    *time.Timer
	timerAt  time.Time
	// timersBehind: the last runTimers left due timers for the next
	// slice. behind is its published form with the queue depth
	// (noteBehind), read by other goroutines.
	timersBehind bool
	behind       atomic.Bool
	touched      []*Conn        // sessions that took input in the current batch
	now          time.Time      // when the current event began
	out          sockio.Batch   // datagrams sealed in this event, sent when it ends
	bs           *sockio.Sender // nil without batched sends (off Linux, other PacketConns)
	// arq is what the sessions' lanes share: the KCP factory (kcp), the
	// buffer of one reassembled message, scratch (internal/arq).
	arq arq.Shard

	kcp    *kcpx.Factory // the sessions' KCPs: prototype, shared flush buffer (internal/kcpx)
	rekeys rekeyBudget   // rekey starts and answers (rekey_sched.go)
	// rekeyEventAt and rekeyEventN count the rekeys started or answered
	// in the event that began at rekeyEventAt (rekeyEventSlot).
	rekeyEventAt time.Time
	rekeyEventN  int

	traffic trafficCounters
	drops   dropCounters
	done    chan struct{} // closed when loop returns
}

// inbound is one datagram routed to a shard.
type inbound struct {
	buf  *packetBuf
	n    int
	from netip.AddrPort
	conn *Conn
}

/* Implementation constants */
const (
	shardQueueLen = 4096 // datagrams a worker may lag behind before dropping
	batchLimit    = 128  // datagrams handled before flushing ACKs (at least one whole hand-off)

	// timerSlice is how many session timers run before the worker takes
	// inbound datagrams again while timers are behind: about a batch's
	// worth of work, so ACKs wait at most one slice.
	timerSlice = 256
	// inboundFirst is how many more datagrams a worker whose timers are
	// behind takes before the next timer slice while its inbound queue
	// is over a quarter full.
	inboundFirst = 1024
	// timerCoalesce is the granularity of the timer heap's keys: deadlines
	// round up to it, so the sessions due in one slot run in one wake.
	timerCoalesce = time.Millisecond
)

func newShard(ep *endpoint, idx int) *shard {
	t := time.NewTimer(time.Hour)
	t.Stop()
	s := &shard{
		ep:    ep,
		idx:   idx,
		in:    make(chan *inboundBatch, shardQueueLen),
		wake:  make(chan struct{}, 1),
		timer: t,
		conns: make(map[*Conn]struct{}),
		out:   sockio.NewBatch(maxDatagram),
		done:  make(chan struct{}),
		kcp: kcpx.NewFactory(kcpx.Options{
			Tune: ep.set.tuneKCP, Audited: ep.set.hooks.kcpAudited,
		}),
	}
	s.arq = arq.Shard{KCP: s.kcp, RecvBuf: make([]byte, ep.set.maxMessage+laneHeaderMax)}
	s.bs = sockio.NewSender(&ep.sock, &ep.gsoOff, ep.log, s.sendTooBig)
	return s
}

// post queues c for the loop and wakes it. Safe from any goroutine,
// including callbacks running on the loop itself.
func (s *shard) post(c *Conn) {
	s.mu.Lock()
	if !c.posted {
		c.posted = true
		s.ready = append(s.ready, c)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shard) loop() {
	defer close(s.done)
	for {
		if s.timersBehind {
			// More timers were due than one slice runs: give inbound
			// datagrams (the ACKs that stop those timers) and posted
			// work their turn first, then run the next slice.
			select {
			case <-s.ep.closing:
				s.now = time.Now()
				s.shutdown()
				s.flushSends()
				return
			default:
			}
			s.now = time.Now()
			s.takeInbound(nil)
			// A deep inbound queue goes first: its ACKs stop many of the
			// timers still due (a peer back from a stall answers for
			// thousands of sessions at once), and what overflows it is
			// dropped. At most inboundFirst more datagrams per slice, so
			// the timers still run.
			for n := 0; n < inboundFirst && s.queued.Load() > shardQueueLen/4; n += batchLimit {
				s.takeInbound(nil)
			}
			select {
			case <-s.wake:
				s.drainReady(s.now)
			default:
			}
			s.timersBehind = s.runTimers(s.now)
			s.noteBehind()
			s.flushSends()
			s.armTimer()
			continue
		}
		select {
		case b := <-s.in:
			s.now = time.Now()
			s.takeInbound(b)
		case <-s.wake:
			s.now = time.Now()
			s.drainReady(s.now)
		case <-s.timer.C:
			s.timerAt = time.Time{}
			s.now = time.Now()
			s.timersBehind = s.runTimers(s.now)
		case <-s.ep.closing:
			s.now = time.Now()
			s.shutdown()
			s.flushSends()
			return
		}
		s.noteBehind()
		s.flushSends()
		s.armTimer()
	}
}

// takeInbound handles b (if not nil) and whatever else waits on in, up to
// batchLimit datagrams, then flushes the sessions that took input.
func (s *shard) takeInbound(b *inboundBatch) {
	handled := 0
	if b != nil {
		handled = s.handleBatch(b)
	}
	for handled < batchLimit {
		select {
		case b = <-s.in:
			handled += s.handleBatch(b)
			continue
		default:
		}
		break
	}
	s.flushTouched(s.now)
}

// workersBehind reports whether any worker is behind (noteBehind). Safe
// from any goroutine.
func (ep *endpoint) workersBehind() bool {
	for _, s := range ep.shards {
		if s.behind.Load() {
			return true
		}
	}
	return false
}

// noteBehind publishes whether the shard is behind: timers due that it has
// not run, or more than a quarter of its inbound queue waiting. Rekeys
// wait while it is (rekey_sched.go), and the handshake loop treats it as
// load (cookies and the rate limit).
func (s *shard) noteBehind() {
	s.behind.Store(s.timersBehind || s.queued.Load() > shardQueueLen/4)
}

func (s *shard) handle(p inbound, now time.Time) {
	c := p.conn
	c.receive(p.buf[:p.n], p.from, now)
	putPacketBuf(p.buf)
	if !c.touched && c.state != stateClosed {
		c.touched = true
		s.touched = append(s.touched, c)
	}
}

// flushTouched sends the ACKs (and any replies the callbacks wrote) for
// every session that took input in this batch: one flush per batch rather
// than one per datagram.
func (s *shard) flushTouched(now time.Time) {
	for i, c := range s.touched {
		c.touched = false
		c.pump(now)
		s.touched[i] = nil
	}
	s.touched = s.touched[:0]
}

func (s *shard) drainReady(now time.Time) {
	s.mu.Lock()
	ready := s.ready
	s.ready = s.readySpare[:0]
	for _, c := range ready {
		c.posted = false
	}
	s.mu.Unlock()
	for i, c := range ready {
		c.pump(now)
		ready[i] = nil
	}
	s.readySpare = ready[:0]
}

// runTimers runs the sessions whose deadline has come, at most timerSlice
// of them, and reports whether more are due: the loop then takes inbound
// work before the next slice, so timers cannot starve the ACKs that would
// stop them.
func (s *shard) runTimers(now time.Time) (more bool) {
	at := int64(now.Sub(s.ep.epoch))
	for n := 0; len(s.timers) > 0; n++ {
		e := s.timers[0]
		if e.at > at {
			return false
		}
		if n == timerSlice {
			s.traffic.timerCuts.Add(1)
			return true
		}
		s.traffic.timerEvents.Add(1)
		e.c.onTimer(now) // reschedules or removes e.c
	}
	return false
}

// schedule puts c in the timer heap at its current deadline, or removes it
// if it has none.
func (s *shard) schedule(c *Conn) {
	switch {
	case c.deadline.IsZero():
		if c.heapIndex >= 0 {
			s.timers.remove(c.heapIndex)
		}
	case c.heapIndex >= 0:
		if at := s.key(c.deadline); at != s.timers[c.heapIndex].at {
			s.timers.fix(c.heapIndex, timerEntry{at: at, c: c})
		}
	default:
		s.timers.push(timerEntry{at: s.key(c.deadline), c: c})
	}
}

// key is a deadline as the heap orders it: nanoseconds since the
// endpoint's epoch (monotonic, as both come from time.Now), rounded up to
// timerCoalesce. Sessions due within the same slot share one timer event:
// the shard's timer fires once for all of them, none early.
func (s *shard) key(t time.Time) int64 {
	k := int64(t.Sub(s.ep.epoch))
	return (k + int64(timerCoalesce) - 1) / int64(timerCoalesce) * int64(timerCoalesce)
}

func (s *shard) armTimer() {
	if len(s.timers) == 0 {
		if !s.timerAt.IsZero() {
			s.timer.Stop()
			s.timerAt = time.Time{}
		}
		return
	}
	next := s.ep.epoch.Add(time.Duration(s.timers[0].at))
	if next.Equal(s.timerAt) {
		return
	}
	s.timerAt = next
	s.timer.Reset(time.Until(next))
}

// shutdown ends every session the shard owns, for Server.Close or a dead
// socket.
func (s *shard) shutdown() {
	s.mu.Lock()
	ready := s.ready
	s.ready = nil
	s.mu.Unlock()
	// Sessions posted but never pumped are not in conns yet.
	for _, c := range ready {
		s.conns[c] = struct{}{}
	}
	for c := range s.conns {
		c.terminate(ErrServerClosed, CloseServerShutdown, "server closed", true)
	}
	// No time is left to repeat the close frames: stop draining.
	for c := range s.conns {
		c.free()
	}
	for {
		select {
		case b := <-s.in:
			s.discardBatch(b)
		default:
			return
		}
	}
}

// connHeap is a min-heap of sessions by deadline. Each entry carries its
// deadline as an integer next to the session pointer, so that sifting
// compares entries in the heap's own array instead of loading a deadline
// from every Conn it passes (a cache miss each at 10k sessions).
type connHeap []timerEntry

type timerEntry struct {
	at int64 // shard.key(c.deadline)
	c  *Conn
}

func (h connHeap) set(i int, e timerEntry) {
	h[i] = e
	e.c.heapIndex = i
}

func (h *connHeap) push(e timerEntry) {
	*h = append(*h, e)
	h.up(len(*h)-1, e)
}

// remove takes out entry i.
func (h *connHeap) remove(i int) {
	old := *h
	n := len(old) - 1
	old[i].c.heapIndex = -1
	last := old[n]
	old[n] = timerEntry{}
	*h = old[:n]
	if i < n {
		h.fix(i, last)
	}
}

// fix puts e in slot i and restores the heap order.
func (h connHeap) fix(i int, e timerEntry) {
	if !h.up(i, e) {
		h.down(i, e)
	}
}

// up moves e, destined for slot i, towards the root; it reports whether
// e moved.
func (h connHeap) up(i int, e timerEntry) bool {
	start := i
	for i > 0 {
		p := (i - 1) / 2
		if h[p].at <= e.at {
			break
		}
		h.set(i, h[p])
		i = p
	}
	h.set(i, e)
	return i != start
}

// down moves e, destined for slot i, towards the leaves.
func (h connHeap) down(i int, e timerEntry) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].at < h[l].at {
			m = r
		}
		if h[m].at >= e.at {
			break
		}
		h.set(i, h[m])
		i = m
	}
	h.set(i, e)
}
