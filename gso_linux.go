package uxp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// UDP generic segmentation offload (Linux 4.18+): one sendmsg carries up to
// 64 equal-sized datagrams to one address (the last may be shorter), with
// a UDP_SEGMENT control message giving the size. The kernel splits them,
// in the NIC where it can; on loopback the stack handles the super-packet
// whole. It saves the per-datagram system call, which dominates the CPU
// cost of bulk sending.

/* Specification constants (linux/udp.h) */
const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT
)

// gsoSender is one shard's GSO send state. The closure and the message
// header are built once so that a send does not allocate.
type gsoSender struct {
	rc     syscall.RawConn
	inet6  bool // the socket is AF_INET6 (IPv4 peers as mapped addresses)
	fn     func(fd uintptr) bool
	msg    syscall.Msghdr
	iov    syscall.Iovec
	sa4    syscall.RawSockaddrInet4
	sa6    syscall.RawSockaddrInet6
	oob    [24]byte // CmsgSpace(2) on 64-bit
	errno  syscall.Errno
	oobLen int
}

// newGSO returns a sender for u's socket, or nil when the kernel lacks
// UDP_SEGMENT.
func newGSO(u *net.UDPConn) *gsoSender {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil
	}
	supported, inet6 := false, false
	_ = rc.Control(func(fd uintptr) {
		_, err := syscall.GetsockoptInt(int(fd), solUDP, udpSegment)
		supported = err == nil
		d, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
		inet6 = err == nil && d == syscall.AF_INET6
	})
	if !supported {
		return nil
	}
	g := &gsoSender{rc: rc, inet6: inet6}
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&g.oob[0]))
	h.Level = solUDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	g.oobLen = syscall.CmsgSpace(2)
	g.msg.Iov = &g.iov
	g.msg.Iovlen = 1
	g.msg.Control = &g.oob[0]
	g.msg.SetControllen(g.oobLen)
	g.fn = func(fd uintptr) bool {
		_, _, e := syscall.Syscall(syscall.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&g.msg)), 0)
		if e == syscall.EAGAIN {
			return false // wait until the socket is writable
		}
		g.errno = e
		return true
	}
	return g
}

var errGSOFamily = errors.New("uxp: GSO: address family does not match the socket")

// send sends b as datagrams of size bytes (the last may be shorter) to to.
func (g *gsoSender) send(b []byte, size int, to netip.AddrPort) error {
	a := to.Addr()
	switch {
	case g.inet6:
		g.sa6 = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16()}
		putPort(&g.sa6.Port, to.Port())
		g.msg.Name = (*byte)(unsafe.Pointer(&g.sa6))
		g.msg.Namelen = syscall.SizeofSockaddrInet6
	case a.Is4():
		g.sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		putPort(&g.sa4.Port, to.Port())
		g.msg.Name = (*byte)(unsafe.Pointer(&g.sa4))
		g.msg.Namelen = syscall.SizeofSockaddrInet4
	default:
		return errGSOFamily
	}
	*(*uint16)(unsafe.Pointer(&g.oob[syscall.CmsgLen(0)])) = uint16(size)
	g.iov.Base = &b[0]
	g.iov.SetLen(len(b))
	g.errno = 0
	if err := g.rc.Write(g.fn); err != nil {
		return err
	}
	g.iov.Base = nil
	if g.errno != 0 {
		return g.errno
	}
	return nil
}

// putPort stores a port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// gsoUnsupported reports whether err means this socket or path cannot do
// GSO at all (rather than a passing send failure).
func gsoUnsupported(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOPROTOOPT) ||
		errors.Is(err, errGSOFamily)
}
