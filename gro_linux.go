package uxp

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// UDP generic receive offload (Linux 5.0+): with UDP_GRO set, the kernel
// may hand one recvmsg several consecutive datagrams of one flow, glued
// together, with a UDP_GRO control message giving their size. A bulk
// sender using GSO then costs the receiver one system call per 64 KiB
// instead of one per datagram. Datagrams the kernel did not merge arrive
// as usual, one per call.

/* Specification constants (linux/udp.h) */
const udpGRO = 104 // UDP_GRO

// groReader is the read loop's receive state. The closure and message
// header are built once so that a read does not allocate.
type groReader struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	msg   syscall.Msghdr
	iov   syscall.Iovec
	name  syscall.RawSockaddrInet6 // large enough for either family
	oob   [64]byte
	buf   []byte
	n     int
	errno syscall.Errno
}

// newGRO turns on UDP_GRO for u's socket and returns a reader for it, or
// nil when the kernel refuses.
func newGRO(u *net.UDPConn) *groReader {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		ok = syscall.SetsockoptInt(int(fd), solUDP, udpGRO, 1) == nil
	})
	if !ok {
		return nil
	}
	g := &groReader{rc: rc, buf: make([]byte, 1<<16)}
	g.iov.Base = &g.buf[0]
	g.iov.SetLen(len(g.buf))
	g.msg.Iov = &g.iov
	g.msg.Iovlen = 1
	g.msg.Name = (*byte)(unsafe.Pointer(&g.name))
	g.msg.Control = &g.oob[0]
	g.fn = func(fd uintptr) bool {
		g.msg.Namelen = syscall.SizeofSockaddrInet6
		g.msg.SetControllen(len(g.oob))
		n, _, e := syscall.Syscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&g.msg)), 0)
		if e == syscall.EAGAIN {
			return false // wait until readable
		}
		g.n, g.errno = int(n), e
		return true
	}
	return g
}

// read receives the next datagram or run of merged datagrams. It returns
// the bytes (valid until the next read), the size of each datagram in them
// (the last may be shorter), and the sender.
func (g *groReader) read() ([]byte, int, netip.AddrPort, error) {
	if err := g.rc.Read(g.fn); err != nil {
		return nil, 0, netip.AddrPort{}, err
	}
	if g.errno != 0 {
		return nil, 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: g.errno}
	}
	b := g.buf[:g.n]
	seg := len(b)
	// Control messages: find UDP_GRO.
	oob := g.oob[:g.msg.Controllen]
	for len(oob) >= syscall.CmsgLen(0) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.CmsgLen(0) || l > len(oob) {
			break
		}
		if h.Level == solUDP && h.Type == udpGRO && l >= syscall.CmsgLen(2) {
			if s := int(*(*uint16)(unsafe.Pointer(&oob[syscall.CmsgLen(0)]))); s > 0 {
				seg = s
			}
		}
		sp := syscall.CmsgSpace(l - syscall.CmsgLen(0))
		if sp > len(oob) {
			break
		}
		oob = oob[sp:]
	}
	return b, seg, g.from(), nil
}

// from decodes the sender's address without allocating.
func (g *groReader) from() netip.AddrPort {
	raw := (*[syscall.SizeofSockaddrInet6]byte)(unsafe.Pointer(&g.name))
	port := uint16(raw[2])<<8 | uint16(raw[3])
	switch g.name.Family {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port)
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(g.name.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}
