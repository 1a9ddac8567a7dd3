package netsim

import (
	"net"
	"sync"
	"time"
)

// BottleneckConn is a net.PacketConn that sends the packets written to it
// through a [Bottleneck] before writing them to an inner PacketConn (a
// [PacketConn] of a [Network], or a [Conn]). Packets the queue drops are
// lost silently, as on a real router; WriteTo still reports success. Only
// the outgoing direction is limited; wrap both ends for a two-way
// bottleneck. ReadFrom, LocalAddr and the deadlines pass straight through.
//
// All methods are safe for concurrent use. Accepted packets are delivered
// in FIFO order by a single time.AfterFunc timer, so a BottleneckConn starts
// no long-lived goroutine and works inside a testing/synctest bubble, where
// its schedule runs on the bubble's fake clock and is deterministic.
type BottleneckConn struct {
	inner net.PacketConn

	mu      sync.Mutex // guards the fields below
	b       *Bottleneck
	pending []bottleneckPacket // accepted, not yet written; deliverAt is non-decreasing
	timer   *time.Timer
	firing  bool // fire is writing packets; it re-arms the timer itself
	closed  bool
}

// bottleneckPacket is an accepted packet waiting for its delivery time.
type bottleneckPacket struct {
	at   time.Time
	data []byte
	addr net.Addr
}

var _ net.PacketConn = (*BottleneckConn)(nil)

// NewBottleneckConn wraps pc; the bottleneck's schedule starts now
// (time.Now, the fake clock inside a synctest bubble). The BottleneckConn
// owns pc and closes it on Close. It panics if cfg is invalid.
func NewBottleneckConn(pc net.PacketConn, cfg BottleneckConfig) *BottleneckConn {
	return &BottleneckConn{inner: pc, b: NewBottleneck(cfg, time.Now())}
}

// Stats returns the bottleneck's counters.
func (c *BottleneckConn) Stats() BottleneckStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Stats()
}

// QueueDelay returns how long a packet written now would queue.
func (c *BottleneckConn) QueueDelay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.QueueDelay(time.Now())
}

// WriteTo copies p and queues it for addr. It fails only when the
// BottleneckConn is closed or p is longer than [MaxDatagram].
func (c *BottleneckConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) > MaxDatagram {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: ErrMessageTooLarge}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.ErrClosed}
	}
	now := time.Now()
	at, _, ok := c.b.Enqueue(now, len(p))
	if !ok {
		return len(p), nil // tail drop: lost on the wire, not an error
	}
	c.pending = append(c.pending, bottleneckPacket{at: at, data: append([]byte(nil), p...), addr: cloneAddr(addr)})
	if len(c.pending) == 1 && !c.firing {
		c.armLocked(now)
	}
	return len(p), nil
}

// armLocked starts the timer for the head of pending.
func (c *BottleneckConn) armLocked(now time.Time) {
	d := c.pending[0].at.Sub(now)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.fire)
		return
	}
	c.timer.Reset(d)
}

// fire writes every due packet in order, then re-arms the timer. Writes
// happen without c.mu so a slow inner conn does not block writers; the
// firing flag keeps WriteTo from arming a second, concurrent fire.
func (c *BottleneckConn) fire() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.firing = true
	now := time.Now()
	n := 0
	for n < len(c.pending) && !c.pending[n].at.After(now) {
		n++
	}
	due := append([]bottleneckPacket(nil), c.pending[:n]...)
	c.pending = append(c.pending[:0], c.pending[n:]...)
	c.mu.Unlock()

	for _, p := range due {
		// A write error (peer gone, network closed) is a loss on the wire.
		_, _ = c.inner.WriteTo(p.data, p.addr)
	}

	c.mu.Lock()
	c.firing = false
	if !c.closed && len(c.pending) > 0 {
		c.armLocked(time.Now())
	}
	c.mu.Unlock()
}

// Close stops delivery (packets still queued are lost) and closes the inner
// PacketConn. Only the first call closes the inner conn; later calls return
// nil.
func (c *BottleneckConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.pending = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return c.inner.Close()
}

// ReadFrom reads from the inner PacketConn.
func (c *BottleneckConn) ReadFrom(p []byte) (int, net.Addr, error) { return c.inner.ReadFrom(p) }

// LocalAddr returns the inner PacketConn's address.
func (c *BottleneckConn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// SetDeadline sets the inner PacketConn's deadlines. Writes never block, so
// only the read deadline matters.
func (c *BottleneckConn) SetDeadline(t time.Time) error { return c.inner.SetDeadline(t) }

// SetReadDeadline sets the inner PacketConn's read deadline.
func (c *BottleneckConn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the inner PacketConn's write deadline.
func (c *BottleneckConn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }
