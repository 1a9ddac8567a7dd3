package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp"
)

// demoClient is one client of the demo: the ConnHandler that checks the
// echoes, and the sender (sendLoop) that writes the messages.
//
// The handler's callbacks run on the client's update worker, which owns
// next and scratch; the counters are atomics, read by the progress reporter
// and the summary.
type demoClient struct {
	uxp.NopHandler

	id       uint32
	gen      payloadGen
	start    time.Time // the demo's shared start instant
	messages int
	rate     float64       // messages per second; 0 means as fast as the window allows
	window   int           // messages sent but not yet echoed
	offset   time.Duration // delay of the first send, to spread the clients out
	rtts     *latencies

	cl        *uxp.Client
	pc        interface{ Close() error } // the impaired socket under cl
	handshake time.Duration
	ready     bool // the handshake completed

	sent, recv           atomic.Uint64
	bytesSent, bytesRecv atomic.Uint64
	wouldBlock           atomic.Uint64
	stopping             atomic.Bool // the demo is closing the client on purpose

	next    uint32 // seq of the next expected echo; owned by the worker
	scratch []byte // owned by the worker

	wake     chan struct{} // capacity 1: an echo arrived, the window may have opened
	done     chan struct{} // closed when every echo arrived or the client failed
	doneOnce sync.Once

	mu      sync.Mutex
	failure error // the first failure; guarded by mu
}

func newDemoClient(id uint32, o *demoOptions, start time.Time, rtts *latencies) *demoClient {
	return &demoClient{
		id:       id,
		gen:      payloadGen{seed: o.seed, size: o.size},
		start:    start,
		messages: o.messages,
		rate:     o.rate,
		window:   o.window,
		rtts:     rtts,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// fail records the client's first failure and ends its run.
func (d *demoClient) fail(err error) {
	d.mu.Lock()
	if d.failure == nil {
		d.failure = err
	}
	d.mu.Unlock()
	d.finish()
}

func (d *demoClient) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failure
}

func (d *demoClient) finish() { d.doneOnce.Do(func() { close(d.done) }) }

func (d *demoClient) complete() bool {
	return d.err() == nil && d.recv.Load() == uint64(d.messages)
}

// OnNewDataComing checks one echo: intact (checksum and the exact payload
// regenerated from the seed), from this client, and exactly the next seq,
// so that a lost, duplicated or reordered echo is caught at once. Checking
// continues after the last echo, so a late duplicate still fails the run.
func (d *demoClient) OnNewDataComing(_ *uxp.Conn, data []byte) {
	if d.err() != nil {
		return
	}
	now := time.Since(d.start)
	h, payload, err := parseMessage(data)
	if err != nil {
		d.fail(fmt.Errorf("echo after seq %d: %w", int64(d.next)-1, err))
		return
	}
	switch seq := h.Seq(); {
	case h.Client() != d.id:
		d.fail(fmt.Errorf("echo seq %d belongs to client %d", seq, h.Client()))
		return
	case seq < d.next:
		d.fail(fmt.Errorf("duplicate or reordered echo: seq %d after %d", seq, d.next-1))
		return
	case seq >= uint32(d.messages):
		d.fail(fmt.Errorf("echo seq %d was never sent (only %d messages)", seq, d.messages))
		return
	case seq > d.next:
		d.fail(fmt.Errorf("missing or reordered echo: got seq %d, want %d", seq, d.next))
		return
	}
	d.scratch = d.gen.payload(d.scratch[:0], d.id, d.next)
	if !bytes.Equal(payload, d.scratch) {
		d.fail(fmt.Errorf("echo seq %d: payload differs from what was sent (%d bytes, want %d)", d.next, len(payload), len(d.scratch)))
		return
	}
	d.rtts.add(now - h.Sent())
	d.next++
	d.bytesRecv.Add(uint64(len(data)))
	if d.recv.Add(1) == uint64(d.messages) {
		d.finish()
	}
	notify(d.wake)
}

// OnClosed runs on the worker when the session ends. Before the demo closes
// the client on purpose, that is a failure.
func (d *demoClient) OnClosed(_ *uxp.Conn, err error) {
	if !d.stopping.Load() && !d.complete() {
		d.fail(fmt.Errorf("session ended after %d of %d echoes: %w", d.recv.Load(), d.messages, err))
	}
}

/* Implementation constants */

// writeRetryInterval is how long the sender waits after ErrWouldBlock when
// no echo arrives to wake it sooner.
const writeRetryInterval = 5 * time.Millisecond

// sendLoop writes the client's messages at the configured rate, never more
// than window of them unanswered. A message that gets ErrWouldBlock is
// rebuilt (with a fresh timestamp) and retried; seq only advances once
// Write accepted the message, so nothing is skipped.
func (d *demoClient) sendLoop(ctx context.Context, conn *uxp.Conn) {
	var interval time.Duration
	if d.rate > 0 {
		interval = time.Duration(float64(time.Second) / d.rate)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	// wait sleeps for dur (or until an echo arrives, if early is set) and
	// reports whether to go on.
	wait := func(dur time.Duration, early bool) bool {
		var woken <-chan struct{}
		if early {
			woken = d.wake
		}
		timer.Reset(dur)
		select {
		case <-timer.C:
			return true
		case <-woken:
			return true
		case <-ctx.Done():
			return false
		case <-d.done:
			return false
		}
	}
	t0 := time.Now().Add(d.offset)
	var buf []byte
	for seq := 0; seq < d.messages; {
		if d.sent.Load()-d.recv.Load() >= uint64(d.window) {
			if !wait(time.Second, true) {
				return
			}
			continue
		}
		if interval > 0 {
			if dur := time.Until(t0.Add(time.Duration(seq) * interval)); dur > 0 && !wait(dur, false) {
				return
			}
		}
		buf = d.gen.buildMessage(buf[:0], d.id, uint32(seq), time.Since(d.start))
		_, err := conn.Write(buf)
		switch {
		case err == nil:
			seq++
			d.bytesSent.Add(uint64(len(buf)))
			d.sent.Add(1)
		case errors.Is(err, uxp.ErrWouldBlock):
			d.wouldBlock.Add(1)
			if !wait(writeRetryInterval, true) {
				return
			}
		default:
			d.fail(fmt.Errorf("write seq %d: %w", seq, err))
			return
		}
	}
}
