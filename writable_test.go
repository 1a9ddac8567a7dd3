package uxp

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// writableRec counts OnWritable calls and records the send queue each saw.
type writableRec struct {
	NopHandler
	calls  atomic.Int64
	queued atomic.Int64
}

func (w *writableRec) OnWritable(c *Conn) {
	w.calls.Add(1)
	w.queued.Store(int64(c.sendQueued()))
}

var _ WritableHandler = (*writableRec)(nil)

// smallQueue is a configuration whose send queue fills quickly.
var smallQueue = &Config{MaxMessageSize: 8 << 10, SendQueueBytes: 32 << 10}

// fillQueue writes 2 KB messages until ErrWouldBlock.
func fillQueue(t testing.TB, c *Conn) {
	t.Helper()
	msg := make([]byte, 2<<10)
	for i := 0; ; i++ {
		_, err := c.Write(msg)
		if errors.Is(err, ErrWouldBlock) {
			return
		}
		require.NoError(t, err)
		require.Less(t, i, 1000, "the queue never filled")
	}
}

// TestOnWritable: OnWritable is not called for a session that never saw
// ErrWouldBlock, however much it wrote; after an ErrWouldBlock it is
// called exactly once, when the queue has drained to half its size; a
// second ErrWouldBlock arms it again.
func TestOnWritable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newSimServer(t, 2, &connCollector{}, nil, smallQueue)
		n.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		w := &writableRec{}
		c := n.dial(t, 0, w).Conn()

		for range 200 {
			_, err := c.Write(make([]byte, 1000))
			require.NoError(t, err)
			time.Sleep(10 * time.Millisecond) // slower than the link drains
		}
		time.Sleep(time.Second)
		require.Zero(t, w.calls.Load(), "no OnWritable without an ErrWouldBlock")

		for round := int64(1); round <= 2; round++ {
			fillQueue(t, c)
			require.Equal(t, round-1, w.calls.Load(), "not before there is room")
			waitFor(t, func() bool { return w.calls.Load() == round })
			require.LessOrEqual(t, w.queued.Load(), int64(smallQueue.SendQueueBytes/2))
			time.Sleep(2 * time.Second) // the queue drains completely
			require.Equal(t, round, w.calls.Load(), "once per ErrWouldBlock")
		}
	})
}

// TestWaitWritable: WaitWritable returns at once with room, waits while
// the queue is full until it drained, gives ctx's error when ctx ends
// first, and the session's error once it has ended.
func TestWaitWritable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newSimServer(t, 3, &connCollector{}, nil, smallQueue)
		n.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		cl := n.dial(t, 0, nil)
		c := cl.Conn()
		require.NoError(t, c.WaitWritable(context.Background()), "room at once")

		fillQueue(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		require.ErrorIs(t, c.WaitWritable(ctx), context.DeadlineExceeded)

		start := time.Now()
		require.NoError(t, c.WaitWritable(context.Background()))
		require.Greater(t, time.Since(start), time.Duration(0), "it waited")
		require.LessOrEqual(t, c.sendQueued(), smallQueue.SendQueueBytes/2)

		// Several waiters are all woken.
		fillQueue(t, c)
		done := make(chan error, 3)
		for range 3 {
			go func() { done <- c.WaitWritable(context.Background()) }()
		}
		for range 3 {
			require.NoError(t, <-done)
		}

		// A session that ends wakes its waiters with its error.
		n.net.SetDefault(netsim.Impairment{Loss: 1})
		// Loss applies when a packet is sent: let the ACKs already on the
		// wire land first, or they may drain the queue below half after
		// it filled and the waiter rightly returns nil.
		time.Sleep(100 * time.Millisecond)
		fillQueue(t, c)
		go func() { done <- c.WaitWritable(context.Background()) }()
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, c.Close())
		err := <-done
		require.ErrorIs(t, err, ErrConnClosed)
	})
}

// panicWritable panics in OnWritable.
type panicWritable struct{ NopHandler }

func (panicWritable) OnWritable(*Conn) { panic("writable bug") }

// TestOnWritablePanic: a panic in OnWritable closes only that session,
// with a *CallbackPanicError.
func TestOnWritablePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newSimServer(t, 13, &connCollector{}, nil, smallQueue)
		n.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		c := n.dial(t, 0, panicWritable{}).Conn()
		fillQueue(t, c)
		<-c.Done()
		var pe *CallbackPanicError
		require.ErrorAs(t, c.Err(), &pe)
		require.Equal(t, "OnWritable", pe.Callback)
	})
}
