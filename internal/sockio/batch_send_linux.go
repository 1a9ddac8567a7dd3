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

// Sender is one shard's sendmmsg state: Flush lays the shard's send
// Batch out as messages, one per datagram or one per GSO run (datagrams to
// one address with one size, the last possibly shorter, with a UDP_SEGMENT
// control message), and sends them all in as few system calls as the
// kernel takes. Each datagram has its own iovec, so a run need not be
// contiguous in the batch buffer: within a span of datagrams committed
// with CommitAnyOrder to one address, the full-size ones go first as one
// run and the shorter ones after them. The arrays grow on first need, up
// to sendBatchPackets entries: most shards (every client's) send one or
// two datagrams per event and never need more.
//
// Owned by the shard goroutine.
type Sender struct {
	sock   *Socket
	rc     syscall.RawConn
	log    *slog.Logger
	gsoOff *atomic.Bool // shared by the socket's senders: set when it refused a GSO send
	inet6  bool         // the socket is AF_INET6 (IPv4 peers as mapped addresses)
	gso    bool         // the kernel knows UDP_SEGMENT
	single bool         // the kernel lacks sendmmsg (ENOSYS): one sendmsg per message
	fn     func(fd uintptr) bool
	hdrs   []mmsghdr
	iovs   []syscall.Iovec
	names  []syscall.RawSockaddrInet6 // large enough for either family
	oobs   [][24]byte                 // CmsgSpace(2) on 64-bit
	order  []int                      // the datagrams (batch indices) in the order they leave
	pend   []int                      // the datagrams (batch indices) the next build lays out
	first  []int                      // per message: its first datagram in order
	last   []int                      // per message: one past its last datagram in order
	niov   int                        // iovecs built
	off    int                        // first message the next call sends
	cnt    int                        // messages built
	sent   int                        // messages the last call sent
	errno  syscall.Errno              // the last call's error
}

/* Implementation constants */
const (
	// maxGSOSegments is the most datagrams one GSO message carries
	// (UDP_MAX_SEGMENTS in Linux before 6.9).
	maxGSOSegments = 64
	// maxGSOBytes is the most UDP payload one GSO message carries: an
	// IPv4 datagram's 65535 bytes less its IP and UDP headers.
	maxGSOBytes = 65535 - 20 - 8
)

var errAddrFamily = errors.New("uxp: destination address family does not match the socket")

// NewSender returns a sender for sock, or nil when sock is not a
// *net.UDPConn or has no raw connection. gsoOff is shared by every sender
// of sock: the first GSO send the socket refuses sets it, and then none of
// them uses GSO again. Failed sends are logged to log at debug level.
func NewSender(sock *Socket, gsoOff *atomic.Bool, log *slog.Logger) *Sender {
	if sock.udp == nil {
		return nil
	}
	rc, err := sock.udp.SyscallConn()
	if err != nil {
		return nil
	}
	s := &Sender{sock: sock, rc: rc, log: log, gsoOff: gsoOff, gso: gsoSupported(rc)}
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
	s.order = make([]int, n)
	s.pend = make([]int, n)
	s.first = make([]int, n)
	s.last = make([]int, n)
}

// Flush sends every datagram of b; the caller then Resets it. A datagram
// the kernel refuses is logged and skipped (UDP is lossy; KCP
// retransmits); a GSO run refused because the socket or path cannot
// segment turns GSO off for the socket and goes out again one datagram
// per message; a closed socket ends the flush.
func (s *Sender) Flush(b *Batch) {
	s.grow(len(b.pkts))
	pend := s.pend[:len(b.pkts)]
	for i := range pend {
		pend[i] = i
	}
	for len(pend) > 0 {
		s.build(b, pend)
		pend = nil
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
			if last-first > 1 && gsoUnsupported(s.errno) {
				// The kernel or the device refused GSO: stop using it
				// on this socket and send this run and the rest again,
				// one datagram per message.
				s.gsoOff.Store(true)
				pend = append(s.pend[:0], s.order[first:s.last[s.cnt-1]]...)
				break
			}
			s.log.Debug("uxp: send failed", "session", b.pkts[s.order[first]].session, "err", s.errno)
			s.off++
		}
	}
	s.clearIovs()
}

// clearIovs drops the messages' references to the batch buffer, so that
// a buffer the batch replaces (Grow) does not stay reachable from here.
func (s *Sender) clearIovs() {
	clear(s.iovs[:s.niov])
	s.niov = 0
}

// build lays out the datagrams pend names (batch indices, in commit
// order) as messages. Datagrams it cannot put in a message (an address of
// the other family) are skipped; those to a zoned IPv6 address go out on
// their own through the socket, which resolves zones.
func (s *Sender) build(b *Batch, pend []int) {
	gso := s.gso && !s.gsoOff.Load()
	s.layout(b, pend, gso)
	n := len(pend)
	m, v := 0, 0
	for i := 0; i < n; {
		p := b.pkts[s.order[i]]
		j := i + 1
		size := p.end - p.off
		if gso {
			total := size
			for j < n && j-i < maxGSOSegments {
				q := b.pkts[s.order[j]]
				qs := q.end - q.off
				if q.to != p.to || qs > size || total+qs > maxGSOBytes {
					break
				}
				total += qs
				j++
				if qs < size {
					break // a shorter datagram ends the run
				}
			}
		}
		if p.to.Addr().Zone() != "" {
			for k := i; k < j; k++ {
				q := b.pkts[s.order[k]]
				if err := s.sock.WriteTo(b.buf[q.off:q.end], q.to); err != nil {
					s.log.Debug("uxp: send failed", "session", q.session, "err", err)
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
		// One iovec per stretch of the run that is contiguous in the
		// batch buffer.
		v0 := v
		for k := i; k < j; k++ {
			q := b.pkts[s.order[k]]
			if v > v0 && q.off == b.pkts[s.order[k-1]].end {
				s.iovs[v-1].SetLen(int(s.iovs[v-1].Len) + q.end - q.off)
				continue
			}
			s.iovs[v].Base = &b.buf[q.off]
			s.iovs[v].SetLen(q.end - q.off)
			v++
		}
		h.Iov = &s.iovs[v0]
		setIovlen(&h.Iovlen, v-v0)
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
	s.niov = max(s.niov, v)
}

// layout writes into s.order the order the datagrams of pend leave in:
// commit order, except that with GSO, within each span of consecutive
// CommitAnyOrder datagrams to one address, the largest ones go first (in
// commit order) and the others after them (in commit order). A bulk
// sender's span is then one GSO run of full-size datagrams and one of the
// messages' short tails, instead of a run per message.
func (s *Sender) layout(b *Batch, pend []int, gso bool) {
	k := 0
	for x := 0; x < len(pend); {
		p := b.pkts[pend[x]]
		y := x + 1
		if gso && p.anyOrder {
			for y < len(pend) && b.pkts[pend[y]].anyOrder && b.pkts[pend[y]].to == p.to {
				y++
			}
		}
		if y-x == 1 {
			s.order[k] = pend[x]
			k++
			x = y
			continue
		}
		size := 0
		for _, i := range pend[x:y] {
			size = max(size, b.pkts[i].end-b.pkts[i].off)
		}
		for _, i := range pend[x:y] {
			if b.pkts[i].end-b.pkts[i].off == size {
				s.order[k] = i
				k++
			}
		}
		for _, i := range pend[x:y] {
			if b.pkts[i].end-b.pkts[i].off != size {
				s.order[k] = i
				k++
			}
		}
		x = y
	}
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

// setIovlen sets a msghdr's iovec count, whose type differs by
// architecture.
func setIovlen[T ~uint32 | ~uint64](p *T, n int) { *p = T(n) }
