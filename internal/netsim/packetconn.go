package netsim

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// PacketConn is an endpoint of a [Network]. It implements net.PacketConn
// with UDP semantics: writes never block, packets may be lost, and a read
// returns one whole datagram, truncated to the buffer if the buffer is
// short. All methods are safe for concurrent use.
type PacketConn struct {
	n         *Network
	limit     int           // receive queue capacity, in packets
	dataReady chan struct{} // capacity 1: the queue became non-empty
	done      chan struct{} // closed by Close

	mu              sync.Mutex // guards the fields below; taken after Network.mu
	addr            netip.AddrPort
	laddr           *net.UDPAddr // addr as returned by LocalAddr
	closed          bool
	queue           []packet // queue[head:] are the packets waiting to be read
	head            int
	readDeadline    time.Time
	writeDeadline   time.Time
	deadlineChanged chan struct{} // closed and replaced when readDeadline changes
}

// packet is a received datagram.
type packet struct {
	from netip.AddrPort
	data []byte // shared with duplicates; never modified
}

var _ net.PacketConn = (*PacketConn)(nil)

func newPacketConn(n *Network, ap netip.AddrPort, limit int) *PacketConn {
	return &PacketConn{
		n:               n,
		limit:           limit,
		dataReady:       make(chan struct{}, 1),
		done:            make(chan struct{}),
		addr:            ap,
		laddr:           net.UDPAddrFromAddrPort(ap),
		deadlineChanged: make(chan struct{}),
	}
}

// ReadFrom blocks until a datagram arrives, copies it into p and returns
// its length and sender, as a *net.UDPAddr. A datagram longer than p is
// truncated to len(p) and the rest is lost, as with UDP on Linux.
//
// If the read deadline has passed, ReadFrom returns a net.Error whose
// Timeout method reports true and which matches os.ErrDeadlineExceeded,
// even if datagrams are waiting, as the net package does. After Close it
// returns an error wrapping net.ErrClosed.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, nil, c.opErr("read", nil, net.ErrClosed)
		}
		dl, changed := c.readDeadline, c.deadlineChanged
		if !dl.IsZero() && !time.Now().Before(dl) {
			c.mu.Unlock()
			return 0, nil, c.opErr("read", nil, os.ErrDeadlineExceeded)
		}
		if c.head < len(c.queue) {
			pkt := c.queue[c.head]
			c.queue[c.head] = packet{}
			c.head++
			more := c.head < len(c.queue)
			if !more {
				c.queue, c.head = c.queue[:0], 0
			}
			c.mu.Unlock()
			if more {
				// dataReady coalesces signals: pass it on so that another
				// blocked reader takes the next packet.
				notify(c.dataReady)
			}
			return copy(p, pkt.data), net.UDPAddrFromAddrPort(pkt.from), nil
		}
		c.mu.Unlock()

		var (
			timer   *time.Timer
			expired <-chan time.Time
		)
		if !dl.IsZero() {
			timer = time.NewTimer(time.Until(dl))
			expired = timer.C
		}
		select {
		case <-c.dataReady:
		case <-changed:
		case <-expired:
		case <-c.done:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// WriteTo sends p to addr through the Network, which copies it and applies
// the link's impairment. Like UDP it returns len(p), nil for packets that
// are lost, including packets to an address with no endpoint. It fails for
// a datagram over MaxDatagram, an addr that is not an IP:port, a passed
// write deadline (a timeout net.Error) or a closed endpoint (wrapping
// net.ErrClosed).
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	closed, from, wd := c.closed, c.addr, c.writeDeadline
	c.mu.Unlock()
	switch {
	case closed:
		return 0, c.opErr("write", addr, net.ErrClosed)
	case !wd.IsZero() && !time.Now().Before(wd):
		return 0, c.opErr("write", addr, os.ErrDeadlineExceeded)
	case len(p) > MaxDatagram:
		return 0, c.opErr("write", addr, ErrMessageTooLarge)
	}
	to, ok := addrPort(addr)
	if !ok {
		return 0, c.opErr("write", addr, ErrInvalidAddr)
	}
	c.n.send(from, to, p)
	return len(p), nil
}

// enqueue adds pkt to the receive queue. It reports false, and the caller
// drops the packet, if the endpoint is closed or the queue is full.
func (c *PacketConn) enqueue(pkt packet) bool {
	c.mu.Lock()
	if c.closed || len(c.queue)-c.head >= c.limit {
		c.mu.Unlock()
		return false
	}
	if c.head > 0 && len(c.queue) == cap(c.queue) {
		// Reuse the consumed front instead of growing the array.
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue, c.head = c.queue[:n], 0
	}
	c.queue = append(c.queue, pkt)
	c.mu.Unlock()
	notify(c.dataReady)
	return true
}

// Rebind moves the endpoint to newAddr (same syntax as [Network.Listen]),
// simulating a NAT rebinding: later packets it sends come from newAddr, and
// packets sent or in flight to the old address are dropped. Packets already
// in its receive queue stay there. It fails with ErrAddrInUse if another
// endpoint has newAddr.
func (c *PacketConn) Rebind(newAddr string) error {
	ap, err := parseAddr(newAddr)
	if err != nil {
		return c.opErr("rebind", nil, fmt.Errorf("%w %q", ErrInvalidAddr, newAddr))
	}
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErrLocked("rebind", nil, net.ErrClosed)
	}
	if ap == c.addr {
		return nil
	}
	ap, err = n.claimLocked(ap)
	if err != nil {
		return c.opErrLocked("rebind", net.UDPAddrFromAddrPort(ap), err)
	}
	delete(n.endpoints, c.addr)
	n.endpoints[ap] = c
	c.addr, c.laddr = ap, net.UDPAddrFromAddrPort(ap)
	return nil
}

// Close removes the endpoint from the Network, discards its receive queue
// and wakes blocked readers. It is idempotent and always returns nil.
func (c *PacketConn) Close() error {
	c.n.mu.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.n.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.n.endpoints[c.addr] == c {
		delete(c.n.endpoints, c.addr)
	}
	clear(c.queue)
	c.queue, c.head = nil, 0
	c.mu.Unlock()
	c.n.mu.Unlock()
	close(c.done)
	return nil
}

// LocalAddr returns the endpoint's current address, a *net.UDPAddr. The
// caller must not modify it.
func (c *PacketConn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laddr
}

// SetDeadline sets both the read and the write deadline.
func (c *PacketConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the time after which ReadFrom fails with a timeout.
// It also applies to a ReadFrom already blocked. The zero time means no
// deadline.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErrLocked("set", nil, net.ErrClosed)
	}
	c.readDeadline = t
	// Wake every blocked reader so it re-arms its timer; a broadcast needs a
	// closed channel, and deadline changes are rare enough to allocate.
	close(c.deadlineChanged)
	c.deadlineChanged = make(chan struct{})
	return nil
}

// SetWriteDeadline sets the time after which WriteTo fails with a timeout.
// Writes never block, so it only matters once it has passed. The zero time
// means no deadline.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErrLocked("set", nil, net.ErrClosed)
	}
	c.writeDeadline = t
	return nil
}

func (c *PacketConn) opErr(op string, addr net.Addr, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opErrLocked(op, addr, err)
}

func (c *PacketConn) opErrLocked(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: err}
}
