package sockio

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched socket I/O (Linux): recvmmsg fills up to DefaultReadBatch
// datagrams (or GRO runs) per system call on a server's read loop, and sendmmsg sends
// a shard's whole send batch, GSO runs included, in one call. Both use
// message headers and closures built once, so that they do not allocate,
// as gso_linux.go and gro_linux.go did for one message. x/net's
// ipv4.PacketConn.ReadBatch would allocate a net.Addr per datagram.

// mmsghdr is struct mmsghdr: a msghdr and the byte count the kernel
// returns for it. Go lays it out as C does on every Linux architecture.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

/* Implementation constants */
const (
	// DefaultReadBatch is how many datagrams or GRO runs one recvmmsg
	// takes by default. Each needs a 64 KiB slot with GRO; 8 keeps the
	// slots (512 KiB) closer to the cache while still taking up to 8
	// small datagrams, or about 360 merged full-size ones, per call.
	DefaultReadBatch = 8
	// maxReadBatch bounds the messages per call a caller may ask for.
	maxReadBatch = 64
	// groSlot is the room for one GRO run: the largest UDP payload.
	groSlot = 1 << 16
	// oobRoom holds the UDP_GRO control message (CmsgSpace(4) is 24
	// bytes on 64-bit) with room to spare.
	oobRoom = 64
)

// Reader is a server read loop's recvmmsg state. Each message has a slot
// of its own in buf; the caller copies every datagram out before the next
// Read, so slots are never handed on.
//
// Owned by the read loop goroutine.
type Reader struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	hdrs  [maxReadBatch]mmsghdr
	iovs  [maxReadBatch]syscall.Iovec
	names [maxReadBatch]syscall.RawSockaddrInet6 // large enough for either family
	oobs  [maxReadBatch][oobRoom]byte
	buf   []byte
	slot  int
	cnt   int // messages per call, at most maxReadBatch
	n     int
	errno syscall.Errno
}

// NewReader returns a recvmmsg reader for s, taking up to cnt messages
// per call (DefaultReadBatch when cnt <= 0, at most 64; benchmarks compare
// counts, 1 is a one-message-per-call GRO reader). With gro it turns
// UDP_GRO on and gives each message a 64 KiB slot; without it, or when the
// kernel refuses GRO, slots are maxDatagram bytes. It returns nil when s is
// not a *net.UDPConn or has no raw connection.
func NewReader(s *Socket, gro bool, maxDatagram, cnt int) *Reader {
	if s.udp == nil {
		return nil
	}
	if cnt <= 0 {
		cnt = DefaultReadBatch
	}
	cnt = min(cnt, maxReadBatch)
	rc, err := s.udp.SyscallConn()
	if err != nil {
		return nil
	}
	slot := maxDatagram
	if gro && enableGRO(rc) {
		slot = groSlot
	}
	r := &Reader{rc: rc, slot: slot, cnt: cnt, buf: make([]byte, cnt*slot)}
	for i := range cnt {
		r.iovs[i].Base = &r.buf[i*slot]
		r.iovs[i].SetLen(slot)
		h := &r.hdrs[i].hdr
		h.Iov = &r.iovs[i]
		h.Iovlen = 1
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Control = &r.oobs[i][0]
	}
	r.fn = func(fd uintptr) bool {
		for i := range r.cnt {
			// The kernel overwrites these with what it filled in.
			r.hdrs[i].hdr.Namelen = syscall.SizeofSockaddrInet6
			r.hdrs[i].hdr.SetControllen(oobRoom)
			r.hdrs[i].hdr.Flags = 0
		}
		n, _, e := syscall.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(r.cnt), 0, 0, 0)
		if e == syscall.EAGAIN {
			return false // wait until readable
		}
		r.n, r.errno = int(n), e
		return true
	}
	return r
}

// Read receives up to the reader's count of messages and returns how
// many; get them with Message. A socket error is a *net.OpError.
func (r *Reader) Read() (int, error) {
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, &net.OpError{Op: "read", Net: "udp", Err: r.errno}
	}
	return r.n, nil
}

// Message returns message i of the last Read: its bytes (valid until the
// next Read), the size of each datagram in them (the last may be shorter;
// len(b) without GRO), the sender, and whether the kernel truncated it.
func (r *Reader) Message(i int) (b []byte, seg int, from netip.AddrPort, trunc bool) {
	h := &r.hdrs[i]
	n := min(int(h.n), r.slot)
	b = r.buf[i*r.slot : i*r.slot+n]
	seg = groSegment(r.oobs[i][:min(int(h.hdr.Controllen), oobRoom)], len(b))
	return b, seg, sockaddrAddrPort(&r.names[i]), h.hdr.Flags&syscall.MSG_TRUNC != 0
}

// NoBatchIO reports whether err, from Reader.Read, means the kernel lacks
// recvmmsg, so that the caller falls back to one datagram per call.
func NoBatchIO(err error) bool {
	if e, ok := err.(*net.OpError); ok {
		err = e.Err
	}
	return err == syscall.ENOSYS
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 without
// allocating; IPv4-mapped addresses are unmapped.
func sockaddrAddrPort(sa *syscall.RawSockaddrInet6) netip.AddrPort {
	raw := (*[syscall.SizeofSockaddrInet6]byte)(unsafe.Pointer(sa))
	port := uint16(raw[2])<<8 | uint16(raw[3])
	switch sa.Family {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port)
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}
