package uxp

import (
	"errors"
	"sync"
	"time"
)

// The StreamConn's send side: coalescing and a send queue bounded by time.
//
// Coalescing. A Write's bytes go to a tail message, which is handed to
// the session (Conn.Write) as soon as the session has nothing waiting to
// be sent: no posted message the shard has not taken, no lane backlog
// behind a full window. Then the tail leaves at once, so a lone write, or
// a request and its reply, waits for nothing (as with Go's default
// TCP_NODELAY). While something waits, further writes are appended to the
// tail, up to one full segment (streamSegment), and the shard hands the
// tail over as soon as the queue ahead of it has been sent (sendRoom). So
// a flood of small writes becomes full-size segments instead of one
// message, and one KCP segment, per write; that is what TCP does with the
// bytes waiting in its socket buffer. Writes of a segment or more bypass
// the tail when it is empty, in pieces of up to streamChunk bytes that
// fill whole segments (streamPiece); what is left of such a Write, less
// than a segment, goes to the tail.
//
// A time bound. Bytes in the session's send queue wait there; the queue is
// bounded in bytes by Config.SendQueueBytes, which at a slow drain is
// seconds of delay. In the spirit of TCP_NOTSENT_LOWAT, once at least
// streamQueueMin bytes are queued Write also blocks
//
//   - while the oldest byte not yet sent (posted to the shard, or in a
//     lane's backlog behind a full window) has waited more than
//     streamQueueTarget since Write handed it over (sendMark). Bytes in
//     flight do not count: they are the window the path needs, and
//     counting them would stall the pipe once per round trip; and
//   - while the queue holds more than twice what drains in a minimum RTT
//     plus streamQueueTarget at the measured drain rate (plus
//     streamQueueMin), so that a burst cannot fill the byte limit in the
//     instant before any byte has had time to wait. The factor 2 lets the
//     drain rate, and so the queue, grow while the path has room, as a
//     congestion window's gain does. Under a congestion controller the
//     bound is on the unsent part instead (overTime): the controller
//     bounds what is in flight.
//
// So backpressure reaches the writer before a queue of seconds builds, and
// a frame written behind a flood waits for milliseconds, not for the whole
// queue. The wait is reported in ConnStats.SendQueueDelay.

/* Implementation constants */
const (
	// streamQueueTarget is the most sojourn, beyond one minimum RTT, the
	// stream lets its send queue reach before Write blocks.
	streamQueueTarget = 2 * time.Millisecond
	// streamQueueMin is the queue below which Write never blocks for
	// time: a window's worth at small rates, so the bound costs no
	// throughput on slow or long paths.
	streamQueueMin = 64 << 10
	// streamUnsentSegments is the unsent part, in stream segments, below
	// which Write never blocks for time under a congestion controller
	// (overTime): a flood keeps the controller's backlog non-empty (the
	// flow is not app-limited) while what waits stays milliseconds'
	// worth. (It was 8 KiB: at 8 Mbit/s, with the pacing rate at 0.35 ×
	// in BBR's Drain, that waited 30-50 ms; two segments wait about 10.)
	streamUnsentSegments = 2
	// streamMaxMarks bounds the send-time marks kept per stream. When it
	// is reached a new mark is skipped; the next one covers its bytes
	// with a later time (the estimate errs short for them).
	streamMaxMarks = 4096
	// streamMarkGap is the least time between two marks.
	streamMarkGap = 50 * time.Microsecond
	// streamRateGap is the least time over which the drain rate is
	// sampled; streamRateGain the weight of a new sample.
	streamRateGap  = 5 * time.Millisecond
	streamRateGain = 0.25
)

// streamSend is the StreamConn's send-side state, guarded by mu. The
// writer (holding wlock) and the shard (sendRoom) both use it; each holds
// mu only around non-blocking work (Conn.Write never blocks).
type streamSend struct {
	mu      sync.Mutex
	tail    []byte // written, not yet handed to the session
	flushed int64  // bytes handed to the session so far
	// marks are (offset, time) pairs: the bytes up to off were handed
	// to the session by at. Those whose bytes were all acknowledged are
	// dropped from the front.
	marks []sendMark
	head  int // marks[head:] are live
	// rate is the drain rate (bytes acknowledged per second) while
	// something was queued, smoothed; rateAt and rateDone are the start
	// of the running interval and its acknowledged offset.
	rate     float64
	rateAt   time.Time
	rateDone int64
	rateBusy bool // an interval is running
	// closing: Close found the queue full; the shard hands the tail
	// over, then closes the session with closeCode and closeReason.
	closing     bool
	closeCode   uint16
	closeReason string
	closeSet    bool
	err         error // a tail hand-over failed with this (the session ended)
}

type sendMark struct {
	off int64
	at  time.Time
}

// streamSegment is the size of a coalesced message: one KCP segment at
// the session's current packet size, less the lane message header.
func (s *StreamConn) streamSegment() int {
	return max(s.c.ep.set.mssSized(s.c.PathMTU(), s.c.fecSized.Load())-1, 1)
}

// streamPiece is how many of n bytes (at least one stream segment, seg)
// a Write hands to the session as one message: the most, up to chunk,
// that fill whole KCP segments once the 1-byte lane message header is
// added: k segments carry k×(seg+1)−1 bytes of stream. A bulk stream then
// sends only full-size packets; the few bytes a Write leaves (less than a
// segment) go to the tail and are coalesced with the next Write. (Pieces
// of chunk bytes each ended in a short packet: one in 13 at 1400 bytes.)
// A chunk smaller than a segment (a small MaxMessageSize) is taken as is.
func streamPiece(n, chunk, seg int) int {
	n = min(n, chunk)
	if k := (n + 1) / (seg + 1); k > 0 {
		return k*(seg+1) - 1
	}
	return n
}

// waiting reports whether the session holds data not yet sent: posted
// messages the shard has not taken, or lane backlogs behind a full
// window (sendBacklog, published by the shard).
func (s *StreamConn) waiting() bool {
	if s.backlogged.Load() {
		return true
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendBytes > 0
}

// sendBacklog reports whether a lane holds messages its window has no
// room for yet, and their bytes. Shard only: it reads the lanes. The time
// bound keeps the backlog short, so the walk is too.
func (c *Conn) sendBacklog() (backlogged bool, bytes int) { return c.arq.Backlog() }

// handOver passes b to the session as one message and records its mark.
// It returns ErrWouldBlock when the byte limit has no room. Holding
// snd.mu.
func (s *StreamConn) handOver(b []byte, now time.Time) error {
	if _, err := s.c.Write(b); err != nil {
		return err
	}
	d := &s.snd
	d.flushed += int64(len(b))
	if n := len(d.marks); n > d.head && now.Sub(d.marks[n-1].at) < streamMarkGap {
		d.marks[n-1].off = d.flushed // the same instant, near enough
	} else if n-d.head < streamMaxMarks {
		if d.head > 0 && d.head >= n/2 {
			n = copy(d.marks, d.marks[d.head:])
			d.marks, d.head = d.marks[:n], 0
		}
		d.marks = append(d.marks, sendMark{off: d.flushed, at: now})
	}
	return nil
}

// flushTail hands the tail over. Holding snd.mu.
func (s *StreamConn) flushTail(now time.Time) error {
	d := &s.snd
	if len(d.tail) == 0 {
		return nil
	}
	if err := s.handOver(d.tail, now); err != nil {
		return err
	}
	d.tail = d.tail[:0]
	return nil
}

// queueState is the send queue as the stream sees it.
type queueState struct {
	delay  time.Duration // how long the oldest byte not yet sent has waited
	queued int           // bytes the session holds for sending, in flight included
	unsent int           // of them, those not sent yet (posted, or in a backlog)
	limit  int           // the drain-rate bound on queued
}

// queueDelay measures the send queue: it drops the marks of bytes sent,
// samples the drain rate and publishes the delay for Stats. Holding
// snd.mu.
func (s *StreamConn) queueDelay(now time.Time) queueState {
	d := &s.snd
	c := s.c
	c.mu.Lock()
	pend := c.pendBytes
	q := queueState{queued: pend + int(c.kcpQueued.Load())}
	c.mu.Unlock()
	done := d.flushed - int64(q.queued) // acknowledged
	// Sent: everything but what is posted or in a backlog. (The stream
	// is the session's only writer of reliable data; a datagram posted
	// meanwhile makes this err early, by its size.)
	sent := d.flushed - int64(pend) - s.backlogBytes.Load()
	q.unsent = pend + int(s.backlogBytes.Load())
	// The drain rate is sampled over busy intervals only: one starts when
	// something is queued and ends after streamRateGap or when the queue
	// is found empty (an idle stretch says nothing of the path, and the
	// shard reports every change, so the end is seen when it happens).
	switch dt := now.Sub(d.rateAt); {
	case !d.rateBusy:
		if q.queued > 0 {
			d.rateAt, d.rateDone, d.rateBusy = now, done, true
		}
	case dt >= streamRateGap || q.queued == 0 && dt > 0:
		d.rate += (float64(done-d.rateDone)/dt.Seconds() - d.rate) * streamRateGain
		d.rateAt, d.rateDone, d.rateBusy = now, done, q.queued > 0
	}
	rtt := s.c.congestionStats().MinRTT
	if rtt == 0 {
		rtt = time.Duration(s.c.rtt.Load())
	}
	q.limit = streamQueueMin + int(2*d.rate*(rtt+streamQueueTarget).Seconds())
	for d.head < len(d.marks) && d.marks[d.head].off <= sent {
		d.head++
	}
	if d.head == len(d.marks) {
		d.marks, d.head = d.marks[:0], 0
		c.cong.sendQueueDelay.Store(0)
		return q
	}
	q.delay = max(now.Sub(d.marks[d.head].at), 0)
	c.cong.sendQueueDelay.Store(int64(q.delay))
	return q
}

// overTime reports whether Write must wait for the queue to drain: over
// streamQueueMin, and either its oldest byte waited too long or it holds
// more than its drain rate justifies. Holding snd.mu.
func (s *StreamConn) overTime(now time.Time) bool {
	q := s.queueDelay(now)
	floor := streamUnsentSegments * s.streamSegment()
	if s.c.cong.gated && q.unsent >= floor &&
		(q.delay > streamQueueTarget || q.unsent > max(floor, s.unsentLimit())) {
		// Under a congestion controller the window in flight is the
		// controller's, often well below streamQueueMin: the rest of
		// streamQueueMin would wait unsent, tens of milliseconds at a
		// few Mbit/s. The bound then also holds for the part not sent,
		// and in bytes for more than streamQueueTarget of it at the
		// controller's bandwidth estimate (a burst before any byte has
		// had time to wait).
		return true
	}
	if s.c.cong.gated {
		// The controller bounds what is in flight, and the bound above
		// what waits unsent. Bytes sent but not yet acknowledged through
		// una are not a queue: behind a lost segment they pile up for
		// the round trip of its repair while the drain rate (una's
		// progress) stalls, and counting them against a limit made of
		// that rate blocked the writer after every loss until the hole
		// closed (5 % random loss through a 20 Mbit/s bottleneck: the
		// bytes in flight fell to 3 packets once per loss burst, 0.79
		// of the link used where 0.87 is the most the loss leaves).
		return false
	}
	return q.queued >= streamQueueMin && (q.delay > streamQueueTarget || q.queued > q.limit)
}

// unsentLimit is the unsent bytes over which Write blocks under a
// congestion controller (overTime): what drains in streamQueueTarget at
// the controller's bandwidth estimate, or its window before the first
// estimate. (It was the window: in Startup, a window of unsent data
// behind a window in flight waited a round trip of a queue Startup
// filled, 69 ms at 8 Mbit/s in TestStreamSendQueueBoundedByTime.)
func (s *StreamConn) unsentLimit() int {
	st := s.c.congestionStats()
	if st.Bandwidth <= 0 {
		return st.CongestionWindow
	}
	return int(float64(st.Bandwidth) * streamQueueTarget.Seconds())
}

// Write sends b on the stream. It blocks while the session's send queue is
// full (Config.SendQueueBytes), while its oldest unsent byte has waited
// longer than 2 ms, or while it holds more than about twice what drains
// in an RTT (under a congestion controller: its unsent part more than 2
// ms of the bandwidth estimate; see stream_send.go); it returns how many
// bytes were accepted, with a *DeadlineError if the write deadline passed
// first, or the session's error if it ended. Small writes may be
// coalesced into one message. Bytes Write returned as accepted are
// delivered unless the session fails.
func (s *StreamConn) Write(b []byte) (int, error) {
	select {
	case s.wlock <- struct{}{}:
	case <-s.closed:
		return 0, ErrConnClosed
	case <-s.wd.wait():
		return 0, &DeadlineError{Op: "write"}
	}
	defer func() { <-s.wlock }()
	chunk := min(s.c.ep.set.maxMessage, streamChunk)
	n := 0
	for {
		select {
		case <-s.closed:
			return n, ErrConnClosed
		case <-s.wd.wait():
			return n, &DeadlineError{Op: "write"}
		default:
		}
		if n == len(b) {
			return n, nil
		}
		k, err := s.writeSome(b[n:], chunk)
		n += k
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrWouldBlock) {
			return n, err
		}
		// The shard signals room after every change to the queue; a
		// stale signal only costs one more try.
		select {
		case <-s.room:
		case <-s.c.Done():
		case <-s.closed:
		case <-s.wd.wait():
		}
	}
}

// writeSome takes what it can of b: into the tail, or straight to the
// session. ErrWouldBlock: wait for room.
func (s *StreamConn) writeSome(b []byte, chunk int) (int, error) {
	d := &s.snd
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return 0, d.err
	}
	if s.overTime(now) {
		return 0, ErrWouldBlock
	}
	seg := s.streamSegment()
	if len(d.tail) == 0 && len(b) >= seg {
		p := b[:streamPiece(len(b), chunk, seg)]
		if err := s.handOver(p, now); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(d.tail) >= seg {
		// Full, and the session had no room for it.
		return 0, s.flushTail(now)
	}
	k := min(seg-len(d.tail), len(b))
	d.tail = append(d.tail, b[:k]...)
	if len(d.tail) >= seg || !s.waiting() {
		if err := s.flushTail(now); err != nil && !errors.Is(err, ErrWouldBlock) {
			return k, err
		}
		// Would block: the tail waits for sendRoom, or the next Write.
	}
	return k, nil
}

// sendRoom runs on the shard whenever the send queue may have changed: it
// publishes whether the lanes are backlogged, hands the tail over once
// nothing waits ahead of it, finishes a Close that waited for room, and
// wakes the writer.
func (h *streamHandler) sendRoom() {
	s := (*StreamConn)(h)
	if s.c == nil {
		return
	}
	backlogged, bytes := s.c.sendBacklog()
	s.backlogged.Store(backlogged)
	s.backlogBytes.Store(int64(bytes))
	d := &s.snd
	now := s.c.shard.now
	d.mu.Lock()
	if len(d.tail) > 0 && (d.closing || !s.waiting()) {
		if err := s.flushTail(now); err != nil && !errors.Is(err, ErrWouldBlock) {
			d.err = err
		}
	}
	closeNow := d.closing && (len(d.tail) == 0 || d.err != nil)
	if closeNow {
		d.closing = false
	}
	code, reason, set := d.closeCode, d.closeReason, d.closeSet
	s.queueDelay(now)
	d.mu.Unlock()
	if closeNow {
		switch {
		case set && code != CloseNormal && code < CloseApplicationMin:
			s.c.requestClose(code, reason, true) // the server's shutdown (shutdownSend)
		case set:
			_ = s.c.CloseWithError(code, reason)
		default:
			s.c.Close()
		}
	}
	notify(h.room)
}

// shutdownSend is closeSend for Server.Shutdown: the stream's last bytes
// may still wait in its tail (a Write's remainder, held while the lanes
// were backlogged), and a session closing without them would lose them;
// a write after the close request fails. It reports false when the shard
// hands the tail over and then closes the session with the shutdown
// code. Safe from any goroutine.
func (s *StreamConn) shutdownSend() bool {
	if s.c == nil {
		return true
	}
	return s.closeSend(CloseServerShutdown, "server shutdown", true)
}

// closeSend hands the tail over before the session closes. It reports
// false when the queue has no room for it: the shard then hands it over
// and closes (sendRoom).
func (s *StreamConn) closeSend(code uint16, reason string, set bool) bool {
	d := &s.snd
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.flushTail(time.Now()); errors.Is(err, ErrWouldBlock) {
		d.closing, d.closeCode, d.closeReason, d.closeSet = true, code, reason, set
		s.c.shard.post(s.c) // in case the queue is already drained
		return false
	}
	return true
}
