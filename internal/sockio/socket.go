package sockio

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// Socket wraps the net.PacketConn an endpoint reads and writes: for a
// *net.UDPConn it reads and writes without allocating and opens the batched
// paths (NewReader, NewSender); any other PacketConn goes through
// ReadFrom and WriteTo.
type Socket struct {
	pc  net.PacketConn
	udp *net.UDPConn // pc, when it is one
	// connected: udp is connected to its one peer (a client), so writes
	// go without an address and the kernel reports that peer's ICMP
	// errors (port unreachable) on reads.
	connected bool
}

// NewSocket wraps pc. With bufferBytes > 0 and a *net.UDPConn it sets the
// socket's receive and send buffers (SO_RCVBUF, SO_SNDBUF) to that size;
// the kernel caps the value at its maximum, which is fine: loopback and
// LAN bursts overflow the default buffers.
//
// A *net.UDPConn is also told never to fragment (noFragment: on Linux
// IP_MTU_DISCOVER and IPV6_MTU_DISCOVER set to their PROBE mode, and
// IPV6_DONTFRAG): path MTU discovery's probes must be lost when larger
// than the path, not split by the kernel, and a datagram larger than the
// interface fails its send with EMSGSIZE (TooBig). Any other PacketConn
// does as it does; whether it fragments is up to it.
func NewSocket(pc net.PacketConn, bufferBytes int) Socket {
	s := Socket{pc: pc}
	if u, ok := pc.(*net.UDPConn); ok {
		s.udp = u
		s.connected = u.RemoteAddr() != nil
		if bufferBytes > 0 {
			_ = u.SetReadBuffer(bufferBytes)
			_ = u.SetWriteBuffer(bufferBytes)
		}
		// Best effort: a socket that refuses (another platform, a
		// kernel without the option) sends as the kernel decides.
		_ = noFragment(u)
	}
	return s
}

// TooBig reports whether err is a send refused because the datagram is
// larger than the interface, or the path, allows (EMSGSIZE): the datagram
// was dropped, and nothing else.
func TooBig(err error) bool { return errors.Is(err, syscall.EMSGSIZE) }

// UDP returns the socket as a *net.UDPConn, or nil for another PacketConn.
func (s *Socket) UDP() *net.UDPConn { return s.udp }

// Read reads one datagram into b and returns its length and sender, with
// an IPv4-mapped address unmapped.
func (s *Socket) Read(b []byte) (int, netip.AddrPort, error) {
	if s.udp != nil {
		n, ap, err := s.udp.ReadFromUDPAddrPort(b)
		return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
	}
	n, addr, err := s.pc.ReadFrom(b)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	return n, AddrPort(addr), nil
}

// WriteTo sends b to to as one datagram; a connected socket sends it to its
// peer.
func (s *Socket) WriteTo(b []byte, to netip.AddrPort) error {
	if s.connected {
		// A connected socket refuses an address (net.ErrWriteToConnected);
		// its peer is the only destination a client has.
		_, err := s.udp.Write(b)
		return err
	}
	if s.udp != nil {
		_, err := s.udp.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := s.pc.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// AddrPort converts any UDP-like address, unmapping an IPv4-mapped one; an
// address it cannot parse becomes the zero AddrPort, which routes nowhere.
func AddrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
