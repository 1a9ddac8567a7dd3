package uxp

import (
	"context"
	"sync"
	"sync/atomic"
)

// Writability: the partner of ErrWouldBlock. A Write that finds the send
// queue full marks the session blocked; when the shard next sees the queue
// at or below half of Config.SendQueueBytes (or empty), it calls the
// handler's OnWritable once and wakes every WaitWritable. Half, not "any
// room", so that a writer woken by OnWritable can write a burst rather than
// one message per wake-up.

// WritableHandler is an optional interface of a ConnHandler: a handler
// that implements it learns when a session whose Write (WriteLane,
// WriteDatagram, Broadcast) returned ErrWouldBlock has room again.
//
// Check at compile time that your handler implements it; a method with a
// misspelled name compiles and is never called:
//
//	var _ uxp.WritableHandler = (*MyHandler)(nil)
type WritableHandler interface {
	// OnWritable is called once after a write to c returned
	// ErrWouldBlock, when c's send queue has drained to at most half of
	// Config.SendQueueBytes. It is never called for a session that never
	// returned ErrWouldBlock, and once per ErrWouldBlock episode: another
	// ErrWouldBlock arms it again. It runs on the session's update worker
	// (the goroutine that calls OnNewDataComing), with no SDK lock held,
	// so it may write; it must not block. A panic closes the session with
	// a *CallbackPanicError.
	OnWritable(c *Conn)
}

// writableState is a session's writability state.
type writableState struct {
	blocked atomic.Bool // a write returned ErrWouldBlock since the last OnWritable
	waiters atomic.Bool // a WaitWritable is waiting
	due     bool        // shard-owned: OnWritable should run at the next pump

	mu   sync.Mutex
	wake chan struct{} // closed to wake the WaitWritable calls; nil when none wait
}

// writableRoom reports whether the session's send queue is at or below
// the writability mark.
func (c *Conn) writableRoom() bool {
	q := c.sendQueued()
	return q == 0 || q <= c.ep.set.sendQueue/2
}

// checkWritable runs on the shard whenever the send queue may have shrunk
// (noteQueued). It costs two atomic loads unless a writer is waiting.
func (c *Conn) checkWritable() {
	w := &c.ext.wr
	if !w.blocked.Load() && !w.waiters.Load() {
		return
	}
	if c.state == stateClosed || !c.writableRoom() {
		return
	}
	if w.waiters.Swap(false) {
		w.mu.Lock()
		if w.wake != nil {
			close(w.wake)
			w.wake = nil
		}
		w.mu.Unlock()
	}
	if w.blocked.Swap(false) {
		if _, ok := c.handlerFor().(WritableHandler); ok {
			// Not called from here: noteQueued runs in the middle of pump
			// and onTimer, which do not expect a callback (and the session
			// it may close) there. pump runs it first thing instead.
			w.due = true
			c.shard.post(c)
		}
	}
}

// pumpWritable runs at the start of pump: it calls OnWritable if it is
// due, and reports whether the session is still live.
func (c *Conn) pumpWritable() bool {
	if !c.ext.wr.due {
		return true
	}
	c.ext.wr.due = false
	if c.state != stateEstablished && c.state != stateClosing {
		return c.state != stateClosed
	}
	if h, ok := c.handlerFor().(WritableHandler); ok {
		func() {
			defer c.recoverCallback("OnWritable")
			h.OnWritable(c)
		}()
	}
	return c.state != stateClosed
}

// WaitWritable blocks until the session's send queue has drained to at
// most half of Config.SendQueueBytes, and returns nil then (at once if it
// already has). It returns ctx.Err() if ctx ends first, and the session's
// error once the session has ended. It is for goroutine-style code;
// handlers use OnWritable. Safe from any goroutine, but do not call it
// from a callback: the worker it would block is the one that drains the
// queue.
func (c *Conn) WaitWritable(ctx context.Context) error {
	w := &c.ext.wr
	for {
		if err := c.Err(); err != nil {
			return err
		}
		w.mu.Lock()
		if w.wake == nil {
			w.wake = make(chan struct{})
		}
		wake := w.wake
		w.waiters.Store(true)
		w.mu.Unlock()
		// Checked after registering, so a drain between the check and the
		// wait cannot be missed.
		if c.writableRoom() {
			return nil
		}
		c.shard.post(c) // have the shard look at the queue at least once more
		select {
		case <-wake:
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
