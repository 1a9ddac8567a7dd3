package uxp

import (
	"errors"
	"fmt"
	"time"

	"github.com/uxp-go/uxp/internal/wire"
)

// How a session ends. Close (or CloseWithError, or Server.Shutdown) only
// asks; the session's shard does the rest:
//
//  1. The session enters stateClosing: Write refuses new messages, and
//     the lanes keep sending what was written, as they did before.
//  2. Once every message is acknowledged, the shard sends the close frame
//     with the close code (CloseNormal unless one was given) and, per lane,
//     the number of messages this side handed to the lane's KCP. The
//     receiver hands over what it holds and checks it took that many
//     messages out of each lane: only then is the end orderly (a stream
//     reads io.EOF).
//  3. If the linger runs out first (Config.CloseLinger with no progress,
//     or the hard cap), the close frame says CloseAbandoned, the peer
//     gets that as an error, and this side's Err reports it too.
//
// The close frame body (wire.FrameClose), little-endian:
//
//	 0        2        3                            3+4n
//	+--------+--------+----------------------------+--------------------+
//	| code   | lanes n| messages sent, u32 per lane | reason, 0..256 bytes |
//	+--------+--------+----------------------------+--------------------+
//
// A body of exactly one byte is the earlier layout: a u8 code, no counts
// and no reason. It is still accepted (its counts cannot be checked).

// The codec is wire.Close.

/* Implementation constants */
const (
	// defaultCloseLinger is how long a closing session waits for the peer
	// to acknowledge anything new before it abandons the rest.
	defaultCloseLinger = 2 * time.Second
	// closeLingerCapFactor × the linger is the hard cap on lingering: a
	// peer that acknowledges a trickle cannot hold a closed session (and
	// its send queue) longer. 60 s by default, the time a 1 MiB send
	// queue takes at about 17 KB/s.
	closeLingerCapFactor = 30
)

// appendCloseFrame appends a close frame body to b.
func (c *Conn) appendCloseFrame(b []byte, code uint16, reason string) []byte {
	b = wire.AppendCloseHeader(b, code, c.arq.Len())
	for i := range c.arq.Len() {
		b = wire.AppendCloseCount(b, c.arq.SentMessages(i))
	}
	if len(reason) > MaxCloseReason {
		reason = reason[:MaxCloseReason]
	}
	return append(b, reason...)
}

// parseCloseFrame checks a close frame body's lengths exactly, against
// this side's bounds.
func parseCloseFrame(body []byte) (wire.Close, bool) {
	return wire.ParseClose(body, maxLanes, MaxCloseReason)
}

// Close ends the session. Messages already written are still delivered
// while the peer keeps acknowledging them (Config.CloseLinger); then an
// authenticated close packet tells the peer, whose stream reads io.EOF
// (and whose OnClosed gets a *CloseError with CloseNormal). If the linger
// runs out first, the peer gets a *CloseError with CloseAbandoned instead,
// and so does this side's Err. Close does not wait for any of that, so it
// is safe inside callbacks; use Done to wait and Err for the outcome.
// Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.requestClose(CloseNormal, "", false)
	return nil
}

// CloseWithError is Close with a code and a reason for the peer, which
// its OnClosed and its stream's Read and Write receive in a *CloseError
// (once the messages already written were delivered, as for Close). code
// is CloseNormal or an application code, at least CloseApplicationMin;
// reason has at most MaxCloseReason bytes. Otherwise it returns
// ErrBadCloseCode and closes nothing. After the session was closed it
// returns the error Err reports, or ErrConnClosed while it is closing.
func (c *Conn) CloseWithError(code uint16, reason string) error {
	if (code != CloseNormal && code < CloseApplicationMin) || len(reason) > MaxCloseReason {
		return ErrBadCloseCode
	}
	if !c.requestClose(code, reason, true) {
		if err := c.Err(); err != nil {
			return err
		}
		return ErrConnClosed
	}
	return nil
}

// requestClose posts a close request carrying code and reason (if set).
// It reports false when the session was already closing or closed.
func (c *Conn) requestClose(code uint16, reason string, set bool) bool {
	c.mu.Lock()
	if c.closeReq || c.err != nil {
		c.mu.Unlock()
		return false
	}
	c.closeReq = true
	c.closeCode, c.closeReason, c.closeSet = code, reason, set
	c.mu.Unlock()
	c.shard.post(c)
	return true
}

// Done returns a channel that is closed when the session has ended, after
// its OnClosed (and, on a server, OnConnClosed) returned. Err then says
// how.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the session ended, or nil while it is live (closing
// included). After this side's Close it is ErrConnClosed if everything
// written was acknowledged, a *CloseError with CloseAbandoned if the
// linger ran out first, and the local *CloseError after CloseWithError.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// startClosing runs on the shard when a close request is taken.
func (c *Conn) startClosing(now time.Time) {
	c.state = stateClosing
	c.lingerProgress = now
	linger := c.ep.set.closeLinger
	if linger > 0 {
		c.lingerCap = now.Add(closeLingerCapFactor * linger)
	}
	c.lingerMark(now)
}

// lingerMark records progress while closing: anything acknowledged since
// the last look (the bytes waiting for an acknowledgement by una, or the
// segments KCP holds, reached a new low) moves lingerProgress to now.
func (c *Conn) lingerMark(now time.Time) {
	queued, segs := c.arq.Sending()
	switch {
	case now.Equal(c.lingerProgress):
		// startClosing
	case queued < c.lingerQueued:
	case segs < c.lingerSegs:
	default:
		return
	}
	c.lingerProgress = now
	c.lingerQueued, c.lingerSegs = queued, segs
}

// lingerDeadline is when a closing session gives up: CloseLinger after
// the last progress, and no later than the hard cap.
func (c *Conn) lingerDeadline() time.Time {
	return earlierNonZero(c.lingerProgress.Add(c.ep.set.closeLinger), c.lingerCap)
}

func earlierNonZero(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}

// closingTick ends a closing session if it is done (everything
// acknowledged: an orderly close) or its linger ran out (abandoned). It
// reports whether the session ended.
func (c *Conn) closingTick(now time.Time) bool {
	if c.state != stateClosing {
		return false
	}
	if c.arq.Idle() {
		c.mu.Lock()
		code, reason, set := c.closeCode, c.closeReason, c.closeSet
		c.mu.Unlock()
		var err error = ErrConnClosed
		if set {
			err = &CloseError{Code: code, Reason: reason}
		}
		c.terminate(err, code, reason, true)
		return true
	}
	c.lingerMark(now)
	if c.ep.set.closeLinger > 0 && now.Before(c.lingerDeadline()) {
		return false
	}
	queued, _ := c.arq.Sending()
	reason := fmt.Sprintf("gave up after %v with %d bytes unacknowledged", now.Sub(c.lingerProgress).Round(time.Millisecond), queued)
	if c.ep.set.closeLinger < 0 {
		reason = fmt.Sprintf("closed at once (CloseLinger < 0) with %d bytes unacknowledged", queued)
	}
	c.terminate(&CloseError{Code: CloseAbandoned, Reason: reason}, CloseAbandoned, reason, true)
	return true
}

// takeClose handles the peer's close frame.
func (c *Conn) takeClose(body []byte) {
	f, ok := parseCloseFrame(body)
	if !ok {
		c.drop(dropMalformed)
		return
	}
	// The peer sends close only after we acknowledged all its data,
	// which may still wait in KCP if a flowHandler was full: hand it
	// over first (at most a receive window's worth) so none is lost.
	c.deliverLanes(true)
	if c.state == stateClosed {
		return // a callback closed the session, or the data broke the protocol
	}
	// Confirm, so that the peer stops draining (it sends its close again
	// until this arrives).
	c.sendFrame(wire.FrameClose, c.appendCloseFrame(nil, f.Code, ""))
	err := &CloseError{Code: f.Code, Reason: f.Reason, Remote: true}
	if f.Code == CloseNormal && f.Counts != nil && !c.tookAll(f) {
		// The peer claims an orderly end, but messages it sent never
		// arrived: never let that read as one.
		err.Code = CloseAbandoned
		err.Reason = "the peer closed before all its messages arrived"
	}
	c.terminate(err, err.Code, "", false)
}

// tookAll reports whether every lane delivered the number of messages the
// peer's close frame says it sent.
func (c *Conn) tookAll(f wire.Close) bool {
	for i := range f.Lanes() {
		want := f.Count(i)
		var got uint32
		if i < c.arq.Len() {
			got = c.arq.ReceivedMessages(i)
		}
		if got != want {
			return false
		}
	}
	return true
}

// closeAndWait closes conns and waits until each has ended (lingering to
// deliver what was written) and the peer confirmed the close (draining),
// for at most the linger's hard cap plus drainTime in all.
func closeAndWait(conns []*Conn) {
	if len(conns) == 0 {
		return
	}
	for _, c := range conns {
		c.Close()
	}
	limit := drainTime
	if l := conns[0].ep.set.closeLinger; l > 0 {
		limit += closeLingerCapFactor * l
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	for _, c := range conns {
		select {
		case <-c.freed:
		case <-t.C:
			return
		}
	}
}

// Draining. A close frame is one unreliable datagram; on a lossy path it
// may never arrive, and the peer would then see an idle timeout instead of
// the code. So the side that sent it keeps the session (its keys and table
// entry, not its data) for a short while after it ended: it sends the
// close frame again on a backing-off timer and whenever an authenticated
// packet arrives from the peer, until the peer's own close frame (which a
// session sends back when it takes one) confirms it, or drainMaxTries
// repetitions or drainTime have passed. The application sees the end at
// once (OnClosed, Done); only the endpoint's goroutines wait (a Client
// stops when its session is freed; Server.Shutdown waits for draining).
/* Implementation constants */
const (
	drainFirst    = 50 * time.Millisecond // first repetition, at least
	drainMaxTries = 7                     // 50 ms doubling: the last at ~3.2 s
	drainTime     = 4 * time.Second
)

// startDrain enters draining after terminate sent the close frame.
func (c *Conn) startDrain(now time.Time) {
	c.draining = true
	c.ep.draining.Add(1)
	c.drainUntil = now.Add(drainTime)
	c.drainNext = now.Add(max(drainFirst, 2*c.hb.srtt))
	c.deadline = c.drainNext
	c.shard.schedule(c)
}

// drainTimer repeats the close frame, or frees the session when draining
// is over.
func (c *Conn) drainTimer(now time.Time) {
	if c.drainTries >= drainMaxTries || !now.Before(c.drainUntil) {
		c.free()
		return
	}
	c.drainTries++
	c.drainSent = now
	c.sendFrame(wire.FrameClose, c.closeBody)
	c.drainNext = now.Add(max(drainFirst, 2*c.hb.srtt) << c.drainTries)
	c.deadline = earlierNonZero(c.drainNext, c.drainUntil)
	c.shard.schedule(c)
}

// drainInput handles a datagram for a draining session: the peer's close
// (or a stateless reset) confirms; anything else from the peer means it
// has not heard the close yet, so it goes again.
func (c *Conn) drainInput(b []byte, now time.Time) {
	if b[0] == wire.MsgReset {
		c.free()
		return
	}
	pt, _, ok := c.open(b)
	if !ok {
		return
	}
	if len(pt) >= wire.FrameHeaderSize && pt[0] == wire.FrameClose {
		c.free()
		return
	}
	if now.Sub(c.drainSent) >= drainFirst/5 {
		// At most one repetition per 10 ms, however fast the peer sends.
		c.drainSent = now
		c.sendFrame(wire.FrameClose, c.closeBody)
	}
}

// free takes an ended session out of the shard's heap and set and the
// endpoint's table, and zeroes its keys. Shard only; idempotent.
func (c *Conn) free() {
	if isClosed(c.freed) {
		return
	}
	s := c.shard
	if c.heapIndex >= 0 {
		c.deadline = time.Time{}
		s.schedule(c)
	}
	delete(s.conns, c)
	c.ep.table.remove(c.id)
	c.zeroKeys()
	c.closeBody = nil
	if c.draining {
		c.draining = false
		c.ep.draining.Add(-1)
	}
	close(c.freed)
	c.ep.owner.onConnFreed(c)
}

// terminate ends the session once: it tells the peer (if notify) with
// code and reason, runs the close callbacks, and unhooks the session from
// every table, at once or, when it told the peer, once the peer confirmed
// (draining, conn_close.go). err nil means a half-open session expired
// unannounced.
func (c *Conn) terminate(err error, code uint16, reason string, notify bool) {
	if c.state == stateClosed {
		return
	}
	announced := c.state != stateHalfOpen
	c.ep.noteClosed(err, code, announced)
	c.tr.closed(c.id, err, code, errors.Is(err, ErrPeerClosed), announced)
	drain := false
	if notify && announced {
		body := c.appendCloseFrame(nil, code, reason)
		if c.sendFrameTo(wire.FrameClose, nil, body, c.remoteAP) > 0 {
			c.closeBody, drain = body, true
		}
	}
	c.state = stateClosed
	c.mu.Lock()
	var local *CloseError
	if c.closeReq && err != nil && !(errors.As(err, &local) && !local.Remote) {
		// Closed locally, then ended otherwise (the peer's close, a
		// timeout, Server.Close): this side asked for the end, but it
		// says so only if nothing it wrote was lost.
		if c.arq.Idle() {
			err = ErrConnClosed
		} else {
			err = &CloseError{Code: CloseAbandoned, Reason: "the session ended before everything written was acknowledged: " + err.Error()}
		}
	}
	if c.err == nil {
		c.err = err
	}
	if c.err == nil {
		c.err = ErrConnClosed
	}
	c.pend = nil
	c.mu.Unlock()

	if drain {
		c.startDrain(c.shard.now)
	} else {
		c.free()
	}
	c.arq.Close()
	c.kcpQueued.Store(0)
	if announced {
		c.callClosed(err)
	}
	c.ep.owner.onConnClosed(c, err, announced)
	// Last, so that whoever waits on Done sees the callbacks' effects.
	close(c.done)
}

func (c *Conn) callClosed(err error) {
	defer func() {
		if r := recover(); r != nil {
			// The session has already ended: only log and count.
			c.ep.callbackPanicked("OnClosed", c.id, r)
		}
	}()
	c.handlerFor().OnClosed(c, err)
}
