package netsim

import (
	"bytes"
	"net"
	"slices"
	"sync"
	"time"
)

// Conn is a net.PacketConn that impairs the packets written to an inner
// PacketConn, usually a real UDP socket. Only the outgoing direction is
// impaired; ReadFrom, LocalAddr and the deadlines pass straight through.
//
// All methods are safe for concurrent use. Delayed packets are owned by the
// Conn's scheduler goroutine (sendLoop), which writes them to the inner
// PacketConn when they are due; Close stops and joins it.
type Conn struct {
	inner   net.PacketConn
	src     *source
	stats   counters
	wake    chan struct{} // capacity 1: a new earliest packet was queued
	closing chan struct{} // closed by Close to stop sendLoop
	done    chan struct{} // closed when sendLoop has returned

	closeOnce sync.Once
	closeErr  error // the inner Close error, returned by every Close call

	mu      sync.Mutex // guards the fields below
	imp     Impairment
	closed  bool
	pending delayQueue[outPacket]
}

// outPacket is a delayed packet waiting in Conn.pending.
type outPacket struct {
	data []byte
	addr net.Addr
}

var _ net.PacketConn = (*Conn)(nil)

// Wrap returns a PacketConn that applies out to every packet written with
// WriteTo before passing it to pc, using a random source seeded with seed
// (see the package documentation about determinism). The Conn owns pc and
// closes it on Close. Wrap starts one scheduler goroutine. It panics if
// out is invalid; check user input with [Impairment.Validate] first.
func Wrap(pc net.PacketConn, out Impairment, seed uint64) *Conn {
	mustValidate(out)
	c := &Conn{
		inner:   pc,
		src:     newSource(seed),
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		imp:     out,
	}
	go c.sendLoop()
	return c
}

// SetImpairment replaces the impairment for packets written from now on;
// packets already delayed keep their due times. It is safe to call at any
// time, e.g. to blackhole a link in the middle of a test. It panics if imp
// is invalid.
func (c *Conn) SetImpairment(imp Impairment) {
	mustValidate(imp)
	c.mu.Lock()
	c.imp = imp
	c.mu.Unlock()
}

// Stats returns a snapshot of the packet counters.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

// WriteTo impairs p and sends it to addr. It copies p, so the caller may
// reuse the buffer at once. Like a lossy network it returns len(p), nil for
// packets it drops or delays. A packet with no delay is written to the inner
// PacketConn synchronously, and an error from that write is returned. After
// Close it returns an error wrapping net.ErrClosed.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) > MaxDatagram {
		return 0, c.opErr(addr, ErrMessageTooLarge)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, c.opErr(addr, net.ErrClosed)
	}
	imp := c.imp
	c.mu.Unlock()

	v := c.src.decide(&imp, p)
	c.stats.count(&v)
	var (
		data   []byte
		dst    net.Addr
		retErr error
	)
	for i := range v.copies {
		if v.delay[i] == 0 {
			if _, err := c.inner.WriteTo(p, addr); err != nil {
				// The copy is lost, like a packet the kernel refused.
				c.stats.dropped.Add(1)
				retErr = err
				continue
			}
			c.stats.delivered.Add(1)
			continue
		}
		if data == nil {
			data = bytes.Clone(p)
			dst = cloneAddr(addr)
		}
		due := time.Now().Add(v.delay[i])
		c.mu.Lock()
		if c.closed {
			// Close raced with this write; the copy dies in flight.
			c.mu.Unlock()
			c.stats.dropped.Add(1)
			continue
		}
		first := c.pending.push(due, outPacket{data: data, addr: dst})
		c.mu.Unlock()
		if first {
			notify(c.wake)
		}
	}
	if retErr != nil {
		return 0, retErr
	}
	return len(p), nil
}

// sendLoop is the scheduler goroutine: it sleeps until the earliest delayed
// packet is due and writes every due packet, in due-time order.
func (c *Conn) sendLoop() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var batch []outPacket
	for {
		c.mu.Lock()
		now := time.Now()
		for {
			pkt, ok := c.pending.popDue(now)
			if !ok {
				break
			}
			batch = append(batch, pkt)
		}
		next, ok := c.pending.next()
		c.mu.Unlock()

		// Write with no lock held so that WriteTo never waits on the socket.
		for i := range batch {
			if _, err := c.inner.WriteTo(batch[i].data, batch[i].addr); err != nil {
				c.stats.dropped.Add(1)
			} else {
				c.stats.delivered.Add(1)
			}
			batch[i] = outPacket{}
		}
		batch = batch[:0]

		var expired <-chan time.Time
		if ok {
			timer.Reset(time.Until(next))
			expired = timer.C
		}
		select {
		case <-c.closing:
			return
		case <-c.wake:
		case <-expired:
		}
	}
}

// Close stops and joins the scheduler goroutine, drops the packets still
// delayed (counting them as Dropped), and closes the inner PacketConn. It is
// idempotent: every call returns the inner Close error of the first.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.closing)
		<-c.done
		c.mu.Lock()
		n := c.pending.clear()
		c.mu.Unlock()
		c.stats.dropped.Add(uint64(n))
		c.closeErr = c.inner.Close()
	})
	return c.closeErr
}

// ReadFrom reads from the inner PacketConn; incoming packets are not
// impaired.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) { return c.inner.ReadFrom(p) }

// LocalAddr returns the inner PacketConn's local address.
func (c *Conn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// SetDeadline sets the inner PacketConn's deadlines. Writes of delayed
// packets happen later on the scheduler goroutine and may then fail because
// of a write deadline; such packets are counted as Dropped.
func (c *Conn) SetDeadline(t time.Time) error { return c.inner.SetDeadline(t) }

// SetReadDeadline sets the inner PacketConn's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the inner PacketConn's write deadline (see
// SetDeadline).
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }

func (c *Conn) opErr(addr net.Addr, err error) error {
	return &net.OpError{Op: "write", Net: "udp", Source: c.inner.LocalAddr(), Addr: addr, Err: err}
}

// cloneAddr copies a *net.UDPAddr, which a caller may reuse and modify
// after WriteTo returns while the packet is still delayed.
func cloneAddr(a net.Addr) net.Addr {
	if u, ok := a.(*net.UDPAddr); ok && u != nil {
		c := *u
		c.IP = slices.Clone(u.IP)
		return &c
	}
	return a
}

// notify signals ch without blocking; a pending signal already covers this
// one.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
