package netsim

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

/* Implementation constants */

// DefaultQueueLen is the receive queue capacity, in packets, of an endpoint
// when Network.QueueLen is zero.
const DefaultQueueLen = 4096

// Ephemeral ports handed out for port 0, as in the IANA dynamic range.
const (
	ephemeralFirst = 49152
	ephemeralCount = 65536 - ephemeralFirst
)

// Network is an in-memory UDP network for tests. Endpoints created by Listen
// exchange datagrams through it, impaired per direction by SetLink and
// SetDefault. It uses only channels, mutexes and timers, so it works inside
// a testing/synctest bubble, where delays take no real time; create it
// inside the bubble that uses it.
//
// All methods are safe for concurrent use. Delayed packets are delivered
// by time.AfterFunc callbacks; the Network starts no long-lived goroutine.
type Network struct {
	// QueueLen is the receive queue capacity, in packets, of endpoints
	// created by later Listen calls; a packet arriving at a full queue is
	// dropped and counted. If zero, DefaultQueueLen (4096) is used. If
	// negative, Listen returns an error.
	//
	// Unlike the rest of the package this is a plain field, read by
	// Listen: set it before the first Listen, not concurrently with it.
	QueueLen int

	src   *source
	stats counters

	mu        sync.Mutex // guards the fields below; taken before PacketConn.mu
	closed    bool
	endpoints map[netip.AddrPort]*PacketConn
	links     map[link]Impairment
	def       Impairment
	nextPort  int // offset of the next ephemeral port to try

	// fireMu serialises fire callbacks, so that due packets are delivered
	// in due-time order even when two callbacks overlap. Taken before smu.
	fireMu sync.Mutex

	smu     sync.Mutex // guards the delay queue fields below
	pending delayQueue[delivery]
	timer   *time.Timer // fires fire at the earliest due time; nil until first use
	stopped bool        // set by Close; later delayed packets are dropped
}

// link is a direction between two endpoints.
type link struct{ from, to netip.AddrPort }

// delivery is a packet in flight.
type delivery struct {
	from, to netip.AddrPort
	data     []byte // shared by duplicate copies; never modified
}

// NewNetwork returns an empty, unimpaired network whose random decisions are
// drawn from a PCG seeded with seed (see the package documentation about
// determinism).
func NewNetwork(seed uint64) *Network {
	return &Network{
		src:       newSource(seed),
		endpoints: make(map[netip.AddrPort]*PacketConn),
		links:     make(map[link]Impairment),
	}
}

// Listen creates an endpoint at addr, written as "IP:port" (for example
// "10.0.0.1:4000" or "[fd00::1]:4000"); an empty IP means 127.0.0.1 and
// port 0 picks a free ephemeral port. Host names are not resolved. It
// returns an error wrapping ErrAddrInUse if another endpoint has the
// address, and one wrapping net.ErrClosed after Close.
func (n *Network) Listen(addr string) (*PacketConn, error) {
	ap, err := parseAddr(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Err: fmt.Errorf("%w %q", ErrInvalidAddr, addr)}
	}
	limit := n.QueueLen
	switch {
	case limit == 0:
		limit = DefaultQueueLen
	case limit < 0:
		return nil, fmt.Errorf("netsim: Network.QueueLen = %d, want >= 0", limit)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: net.ErrClosed}
	}
	ap, err = n.claimLocked(ap)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: err}
	}
	c := newPacketConn(n, ap, limit)
	n.endpoints[ap] = c
	return c, nil
}

// claimLocked returns ap, with a free ephemeral port if its port is 0, or
// an error if it is taken. n.mu must be held.
func (n *Network) claimLocked(ap netip.AddrPort) (netip.AddrPort, error) {
	if ap.Port() != 0 {
		if _, used := n.endpoints[ap]; used {
			return ap, ErrAddrInUse
		}
		return ap, nil
	}
	for range ephemeralCount {
		cand := netip.AddrPortFrom(ap.Addr(), uint16(ephemeralFirst+n.nextPort))
		n.nextPort = (n.nextPort + 1) % ephemeralCount
		if _, used := n.endpoints[cand]; !used {
			return cand, nil
		}
	}
	return ap, ErrPortsExhausted
}

// SetLink sets the impairment for packets sent from the endpoint at from to
// the address to. It is directional: set both directions for a symmetric
// link. Addresses are matched by IP and port; after a Rebind the old
// address's links no longer apply. It panics if imp is invalid or an
// address is not an IP:port.
func (n *Network) SetLink(from, to net.Addr, imp Impairment) {
	mustValidate(imp)
	f, ok1 := addrPort(from)
	t, ok2 := addrPort(to)
	if !ok1 || !ok2 {
		panic(fmt.Errorf("%w: SetLink(%v, %v)", ErrInvalidAddr, from, to))
	}
	n.mu.Lock()
	n.links[link{f, t}] = imp
	n.mu.Unlock()
}

// SetDefault sets the impairment for every direction without a SetLink. It
// panics if imp is invalid.
func (n *Network) SetDefault(imp Impairment) {
	mustValidate(imp)
	n.mu.Lock()
	n.def = imp
	n.mu.Unlock()
}

// Inject delivers p to the endpoint at to as if the endpoint at from had
// sent it, bypassing impairment; from need not exist (spoofing, for security
// tests). p is copied. It counts as Sent, and as Delivered or Dropped; an
// unparsable address or a datagram over MaxDatagram is dropped.
func (n *Network) Inject(from, to net.Addr, p []byte) {
	n.stats.sent.Add(1)
	f, ok1 := addrPort(from)
	t, ok2 := addrPort(to)
	if !ok1 || !ok2 || len(p) > MaxDatagram {
		n.stats.dropped.Add(1)
		return
	}
	n.deliver(delivery{from: f, to: t, data: bytes.Clone(p)})
}

// Stats returns a snapshot of the packet counters of all endpoints.
func (n *Network) Stats() Stats { return n.stats.snapshot() }

// Close closes every endpoint, stops the delay timer and drops the packets
// in flight (counting them as Dropped). Later Listen calls fail. Close is
// idempotent and always returns nil.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	eps := make([]*PacketConn, 0, len(n.endpoints))
	for _, c := range n.endpoints {
		eps = append(eps, c)
	}
	n.mu.Unlock()
	for _, c := range eps {
		c.Close()
	}

	n.smu.Lock()
	n.stopped = true
	if n.timer != nil {
		n.timer.Stop()
	}
	dropped := n.pending.clear()
	n.smu.Unlock()
	n.stats.dropped.Add(uint64(dropped))
	return nil
}

// send impairs p on the link from -> to and delivers or schedules its
// copies. p is copied before send returns.
func (n *Network) send(from, to netip.AddrPort, p []byte) {
	n.mu.Lock()
	imp, ok := n.links[link{from, to}]
	if !ok {
		imp = n.def
	}
	n.mu.Unlock()

	v := n.src.decide(&imp, p)
	n.stats.count(&v)
	if v.copies == 0 {
		return
	}
	d := delivery{from: from, to: to, data: bytes.Clone(p)}
	now := time.Now()
	for i := range v.copies {
		if v.delay[i] == 0 {
			n.deliver(d)
			continue
		}
		n.schedule(now.Add(v.delay[i]), d)
	}
}

// deliver puts d in the receive queue of the endpoint currently at d.to.
// The endpoint is looked up at delivery time, so a packet in flight to an
// address that was rebound away is dropped, as with a NAT.
func (n *Network) deliver(d delivery) {
	n.mu.Lock()
	c := n.endpoints[d.to]
	n.mu.Unlock()
	if c == nil || !c.enqueue(packet{from: d.from, data: d.data}) {
		// Like UDP: no listener or a full socket buffer loses the packet
		// silently, and the writer never blocks.
		n.stats.dropped.Add(1)
		return
	}
	n.stats.delivered.Add(1)
}

// schedule queues d for delivery at due and re-arms the timer if d is the
// earliest packet in flight.
func (n *Network) schedule(due time.Time, d delivery) {
	n.smu.Lock()
	defer n.smu.Unlock()
	if n.stopped {
		n.stats.dropped.Add(1)
		return
	}
	if !n.pending.push(due, d) {
		return
	}
	if n.timer == nil {
		n.timer = time.AfterFunc(time.Until(due), n.fire)
	} else {
		n.timer.Reset(time.Until(due))
	}
}

// fire runs on a timer goroutine. It delivers every due packet in order and
// re-arms the timer for the next one.
func (n *Network) fire() {
	n.fireMu.Lock()
	defer n.fireMu.Unlock()
	for {
		n.smu.Lock()
		d, ok := n.pending.popDue(time.Now())
		if !ok {
			if next, ok := n.pending.next(); ok && !n.stopped {
				n.timer.Reset(time.Until(next))
			}
			n.smu.Unlock()
			return
		}
		n.smu.Unlock()
		n.deliver(d)
	}
}

// parseAddr parses "IP:port" without resolving names; an empty IP means
// 127.0.0.1. IPv4-mapped IPv6 addresses are unmapped.
func parseAddr(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if host != "" {
		if ip, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, err
		}
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), nil
}

// addrPort converts a net.Addr to the key used for endpoints and links.
// *net.UDPAddr converts without allocating; other types are parsed from
// String.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return ap, false
	case *net.UDPAddr:
		if a == nil {
			return ap, false
		}
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	if !ap.Addr().IsValid() {
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
