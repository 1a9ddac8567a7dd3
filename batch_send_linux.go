package uxp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSender is one shard's sendmmsg state: flush turns the shard's send
// batch into messages, one per datagram or one per GSO run (consecutive
// datagrams to one address with one size, the last possibly shorter, with
// a UDP_SEGMENT control message), and sends them all in as few system
// calls as the kernel takes. The arrays grow on first need, up to
// sendBatchPackets entries: most shards (every client's) send one or two
// datagrams per event and never need more.
//
// Owned by the shard goroutine.
type batchSender struct {
	rc     syscall.RawConn
	inet6  bool // the socket is AF_INET6 (IPv4 peers as mapped addresses)
	gso    bool // the kernel knows UDP_SEGMENT
	single bool // the kernel lacks sendmmsg (ENOSYS): one sendmsg per message
	fn     func(fd uintptr) bool
	hdrs   []mmsghdr
	iovs   []syscall.Iovec
	names  []syscall.RawSockaddrInet6 // large enough for either family
	oobs   [][24]byte                 // CmsgSpace(2) on 64-bit
	first  []int                      // per message: its first datagram in the batch
	last   []int                      // per message: one past its last datagram
	off    int                        // first message the next call sends
	cnt    int                        // messages built
	sent   int                        // messages the last call sent
	errno  syscall.Errno              // the last call's error
}

var errAddrFamily = errors.New("uxp: destination address family does not match the socket")

// newBatchSender returns a sender for u's socket, or nil when u has no raw
// connection.
func newBatchSender(u *net.UDPConn) *batchSender {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil
	}
	s := &batchSender{rc: rc, gso: gsoSupported(rc)}
	_ = rc.Control(func(fd uintptr) {
		d, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
		s.inet6 = err == nil && d == syscall.AF_INET6
	})
	s.fn = func(fd uintptr) bool {
		var n uintptr
		var e syscall.Errno
		if s.single {
			_, _, e = syscall.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.off].hdr)), 0)
			n = 1
		} else {
			n, _, e = syscall.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.off])),
				uintptr(s.cnt-s.off), 0, 0, 0)
		}
		if e == syscall.EAGAIN {
			return false // wait until the socket is writable
		}
		if e != 0 {
			n = 0
		}
		s.sent, s.errno = int(n), e
		return true
	}
	return s
}

// grow makes room for n messages.
func (s *batchSender) grow(n int) {
	if n <= len(s.hdrs) {
		return
	}
	n = max(n, min(2*len(s.hdrs), sendBatchPackets))
	s.hdrs = make([]mmsghdr, n)
	s.iovs = make([]syscall.Iovec, n)
	s.names = make([]syscall.RawSockaddrInet6, n)
	s.oobs = make([][24]byte, n)
	s.first = make([]int, n)
	s.last = make([]int, n)
}

// flush sends every datagram of b. A datagram the kernel refuses is
// logged and skipped (UDP is lossy; KCP retransmits); a GSO run refused
// because the socket or path cannot segment turns GSO off for the
// endpoint and goes out again one datagram per message; a closed socket
// ends the flush.
func (s *batchSender) flush(ep *endpoint, b *sendBatch) {
	s.grow(len(b.pkts))
	for i := 0; i < len(b.pkts); {
		i = s.build(ep, b, i)
		for s.off = 0; s.off < s.cnt; {
			s.sent, s.errno = 0, 0
			if err := s.rc.Write(s.fn); err != nil {
				// The socket is closed (the endpoint is stopping):
				// nothing more can leave.
				ep.log.Debug("uxp: send failed", "err", err)
				return
			}
			if s.errno == 0 && s.sent > 0 {
				s.off += s.sent
				continue
			}
			if s.errno == syscall.ENOSYS && !s.single {
				s.single = true
				continue
			}
			first, last := s.first[s.off], s.last[s.off]
			if last-first > 1 && gsoUnsupported(s.errno) {
				// The kernel or the device refused GSO: stop using it
				// on this socket and send this run and the rest again,
				// one datagram per message.
				ep.gsoOff.Store(true)
				i = first
				break
			}
			ep.log.Debug("uxp: send failed", "session", b.pkts[first].conn.id, "err", s.errno)
			s.off++
		}
	}
	for m := range s.cnt {
		s.iovs[m].Base = nil // do not keep the batch buffer reachable from here
	}
}

// build turns datagrams from index i on into messages and returns the
// index after the last one it took. Datagrams it cannot put in a message
// (an address of the other family) are skipped; those to a zoned IPv6
// address go out on their own through the socket, which resolves zones.
func (s *batchSender) build(ep *endpoint, b *sendBatch, i int) int {
	gso := s.gso && !ep.gsoOff.Load()
	m := 0
	for i < len(b.pkts) {
		p := b.pkts[i]
		j := i + 1
		size := p.end - p.off
		if gso {
			for j < len(b.pkts) && b.pkts[j].to == p.to && b.pkts[j-1].end-b.pkts[j-1].off == size &&
				b.pkts[j].off == b.pkts[j-1].end && b.pkts[j].end-b.pkts[j].off <= size {
				j++
			}
		}
		if p.to.Addr().Zone() != "" {
			for k := i; k < j; k++ {
				q := b.pkts[k]
				if err := ep.writeTo(b.buf[q.off:q.end], q.to); err != nil {
					ep.log.Debug("uxp: send failed", "session", q.conn.id, "err", err)
				}
			}
			i = j
			continue
		}
		h := &s.hdrs[m].hdr
		if !s.setName(m, p.to) {
			ep.log.Debug("uxp: send failed", "session", p.conn.id, "err", errAddrFamily)
			i = j
			continue
		}
		end := b.pkts[j-1].end
		s.iovs[m].Base = &b.buf[p.off]
		s.iovs[m].SetLen(end - p.off)
		h.Iov = &s.iovs[m]
		h.Iovlen = 1
		if j-i > 1 {
			h.Control = &s.oobs[m][0]
			h.SetControllen(putSegmentSize(s.oobs[m][:], size))
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		s.first[m], s.last[m] = i, j
		m++
		i = j
	}
	s.cnt = m
	return i
}

// setName writes message m's destination. It reports false for an
// address the socket's family cannot reach.
func (s *batchSender) setName(m int, to netip.AddrPort) bool {
	h := &s.hdrs[m].hdr
	a := to.Addr()
	switch {
	case s.inet6:
		s.names[m] = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16()}
		putPort(&s.names[m].Port, to.Port())
		h.Namelen = syscall.SizeofSockaddrInet6
	case a.Is4():
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&s.names[m]))
		*sa = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		putPort(&sa.Port, to.Port())
		h.Namelen = syscall.SizeofSockaddrInet4
	default:
		return false
	}
	h.Name = (*byte)(unsafe.Pointer(&s.names[m]))
	return true
}
