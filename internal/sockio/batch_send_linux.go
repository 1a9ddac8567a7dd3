package sockio

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sender is one shard's sendmmsg state: Flush turns the shard's send
// Batch into messages, one per datagram or one per GSO run (consecutive
// datagrams to one address with one size, the last possibly shorter, with
// a UDP_SEGMENT control message), and sends them all in as few system
// calls as the kernel takes. The arrays grow on first need, up to
// sendBatchPackets entries: most shards (every client's) send one or two
// datagrams per event and never need more.
//
// A datagram larger than the interface allows (the socket never fragments:
// NewSocket) fails alone with EMSGSIZE: it is dropped and reported to
// tooBig, and the rest of the batch goes. A GSO run the kernel refuses,
// because the device cannot segment or because its segment size exceeds
// the interface, goes again one datagram per message, so that only the
// datagrams too big are lost (split).
//
// Owned by the shard goroutine.
type Sender struct {
	sock   *Socket
	rc     syscall.RawConn
	log    *slog.Logger
	tooBig func(session uint32) // a datagram of session was refused with EMSGSIZE; may be nil
	gsoOff *atomic.Bool         // shared by the socket's senders: set when it refused a GSO send
	inet6  bool                 // the socket is AF_INET6 (IPv4 peers as mapped addresses)
	gso    bool                 // the kernel knows UDP_SEGMENT
	single bool                 // the kernel lacks sendmmsg (ENOSYS): one sendmsg per message
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
	// split: the datagrams before splitEnd, of a GSO run the kernel
	// refused with splitErr, go one per message; splitBig records
	// whether one of them was too big (then the run's size, not GSO,
	// was the reason). Zero splitEnd: no split in progress.
	splitEnd int
	splitErr syscall.Errno
	splitBig bool
}

/* Implementation constants */
const (
	// maxGSOSegments is the most datagrams one GSO message carries
	// (UDP_MAX_SEGMENTS before Linux 6.9).
	maxGSOSegments = 64
	// maxGSOBytes is the most UDP payload one GSO message carries: an
	// IPv4 datagram's 65535 bytes less its IP and UDP headers.
	maxGSOBytes = 65535 - 20 - 8
)

var errAddrFamily = errors.New("uxp: destination address family does not match the socket")

// NewSender returns a sender for sock, or nil when sock is not a
// *net.UDPConn or has no raw connection. gsoOff is shared by every sender
// of sock: the first GSO send the socket refuses for want of GSO sets it,
// and then none of them uses GSO again. tooBig (nil: none) hears of every
// datagram refused as too big, with its session. Other failed sends are
// logged to log at debug level.
func NewSender(sock *Socket, gsoOff *atomic.Bool, log *slog.Logger, tooBig func(session uint32)) *Sender {
	if sock.udp == nil {
		return nil
	}
	rc, err := sock.udp.SyscallConn()
	if err != nil {
		return nil
	}
	s := &Sender{sock: sock, rc: rc, log: log, tooBig: tooBig, gsoOff: gsoOff, gso: gsoSupported(rc)}
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
func (s *Sender) grow(n int) {
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

// Flush sends every datagram of b; the caller then Resets it. A datagram
// the kernel refuses is skipped (UDP is lossy; KCP retransmits): one too
// big is reported to tooBig, any other failure logged. A GSO run refused
// goes again one datagram per message (split); if none of them was too
// big and the refusal says the socket or path cannot segment, GSO is
// turned off for the socket. A closed socket ends the flush.
func (s *Sender) Flush(b *Batch) {
	s.grow(len(b.pkts))
	s.splitEnd = 0
	for i := 0; i < len(b.pkts); {
		i = s.build(b, i)
		for s.off = 0; s.off < s.cnt; {
			s.sent, s.errno = 0, 0
			if err := s.rc.Write(s.fn); err != nil {
				// The socket is closed (the endpoint is stopping):
				// nothing more can leave.
				s.log.Debug("uxp: send failed", "err", err)
				s.clearIovs()
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
			if last-first > 1 && (gsoUnsupported(s.errno) || s.errno == syscall.EMSGSIZE) {
				// A GSO run refused: the device cannot segment, or
				// the segment size exceeds the interface (the socket
				// never fragments). Send the run again one datagram
				// per message, so that only one too big is lost, then
				// the rest as usual.
				s.splitEnd, s.splitErr, s.splitBig = last, s.errno, false
				i = first
				break
			}
			s.refused(b.pkts[first].session, s.errno, first)
			s.off++
		}
		if s.splitEnd > 0 && i >= s.splitEnd {
			s.endSplit()
		}
	}
	s.clearIovs()
}

// refused handles datagram i of session, refused by the kernel with err:
// dropped, counted when too big, logged otherwise.
func (s *Sender) refused(session uint32, err error, i int) {
	if TooBig(err) {
		if i < s.splitEnd {
			s.splitBig = true
		}
		if s.tooBig != nil {
			s.tooBig(session)
		}
		return
	}
	s.log.Debug("uxp: send failed", "session", session, "err", err)
}

// endSplit ends a split once its datagrams were sent one per message:
// GSO is turned off for the socket if the run's refusal says it cannot
// segment and no datagram of it was too big (a run refused for its size
// says nothing about GSO).
func (s *Sender) endSplit() {
	if !s.splitBig && gsoUnsupported(s.splitErr) {
		s.gsoOff.Store(true)
	}
	s.splitEnd = 0
}

// clearIovs drops the messages' references to the batch buffer, so that
// a buffer the batch replaces (Grow) does not stay reachable from here.
func (s *Sender) clearIovs() {
	for m := range s.cnt {
		s.iovs[m].Base = nil
	}
}

// build turns datagrams from index i on into messages and returns the
// index after the last one it took. Datagrams it cannot put in a message
// (an address of the other family) are skipped; those to a zoned IPv6
// address go out on their own through the socket, which resolves zones.
func (s *Sender) build(b *Batch, i int) int {
	gso := s.gso && !s.gsoOff.Load()
	m := 0
	for i < len(b.pkts) {
		if s.splitEnd > 0 && i == s.splitEnd {
			// The split's datagrams are built: send them before
			// deciding about GSO (endSplit).
			break
		}
		p := b.pkts[i]
		j := i + 1
		size := p.end - p.off
		if gso && i >= s.splitEnd {
			for j < len(b.pkts) && j-i < maxGSOSegments && b.pkts[j].end-p.off <= maxGSOBytes &&
				b.pkts[j].to == p.to && b.pkts[j-1].end-b.pkts[j-1].off == size &&
				b.pkts[j].off == b.pkts[j-1].end && b.pkts[j].end-b.pkts[j].off <= size {
				j++
			}
		}
		if p.to.Addr().Zone() != "" {
			for k := i; k < j; k++ {
				q := b.pkts[k]
				if err := s.sock.WriteTo(b.buf[q.off:q.end], q.to); err != nil {
					s.refused(q.session, err, k)
				}
			}
			i = j
			continue
		}
		h := &s.hdrs[m].hdr
		if !s.setName(m, p.to) {
			s.log.Debug("uxp: send failed", "session", p.session, "err", errAddrFamily)
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
func (s *Sender) setName(m int, to netip.AddrPort) bool {
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
