package uxp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// udpSocket opens a loopback UDP socket with 4 MiB buffers, closed at the
// end of the test.
func udpSocket(t testing.TB) *net.UDPConn {
	t.Helper()
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = u.SetReadBuffer(4 << 20)
	_ = u.SetWriteBuffer(4 << 20)
	t.Cleanup(func() { u.Close() })
	return u
}

func addrOf(u *net.UDPConn) netip.AddrPort { return u.LocalAddr().(*net.UDPAddr).AddrPort() }

// sendingShard is the one shard of an endpoint on u that is never started:
// the test fills its send batch and flushes it by hand.
func sendingShard(t testing.TB, u *net.UDPConn) *shard {
	t.Helper()
	set, err := (&Config{}).resolve()
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(u, set, 1)
	s := ep.shards[0]
	if s.bs == nil {
		t.Fatal("no batch sender on a *net.UDPConn")
	}
	return s
}

// queue adds a datagram of size bytes, each byte tag, to s's send batch.
func queue(s *shard, to netip.AddrPort, size int, tag byte) {
	b := s.sendRoom()[:size]
	for i := range b {
		b[i] = tag
	}
	s.commitSend(size, to, &Conn{id: uint32(tag)})
}

// readTags reads datagrams from u until it has been quiet for 200 ms and
// returns each one's tag and size.
func readTags(t *testing.T, u *net.UDPConn) (tags []byte, sizes []int) {
	t.Helper()
	buf := make([]byte, 1<<16)
	for {
		_ = u.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return tags, sizes
			}
			t.Fatal(err)
		}
		if n == 0 || bytes.Count(buf[:n], buf[:1]) != n {
			t.Fatalf("datagram of %d bytes is not one tag repeated", n)
		}
		tags, sizes = append(tags, buf[0]), append(sizes, n)
	}
}

// sendPlan is what TestBatchSend* queue: a GSO-able run to r1, a datagram
// the kernel refuses (broadcast without SO_BROADCAST), one to r2, one the
// IPv4 socket cannot address (IPv6), then more to both.
func sendPlan(t *testing.T, s *shard, r1, r2 netip.AddrPort) (want1, want2 []byte, sizes1 []int) {
	t.Helper()
	queue(s, r1, 1000, 1)
	queue(s, r1, 1000, 2)
	queue(s, r1, 1000, 3)
	queue(s, r1, 500, 4) // the run's shorter last datagram
	queue(s, netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), r1.Port()), 100, 5)
	queue(s, r2, 200, 6)
	queue(s, netip.MustParseAddrPort("[::1]:9"), 100, 7)
	queue(s, r1, 300, 8)
	queue(s, r2, 700, 9)
	queue(s, r2, 700, 10)
	return []byte{1, 2, 3, 4, 8}, []byte{6, 9, 10}, []int{1000, 1000, 1000, 500, 300}
}

func checkDelivery(t *testing.T, s *shard, r1, r2 *net.UDPConn, want1, want2 []byte, sizes1 []int) {
	t.Helper()
	if len(s.out.pkts) != 0 || len(s.out.buf) != 0 {
		t.Fatalf("send batch not emptied: %d datagrams, %d bytes", len(s.out.pkts), len(s.out.buf))
	}
	got1, gotSizes1 := readTags(t, r1)
	got2, _ := readTags(t, r2)
	if !bytes.Equal(got1, want1) || !bytes.Equal(got2, want2) {
		t.Fatalf("receiver 1 got %v, want %v; receiver 2 got %v, want %v", got1, want1, got2, want2)
	}
	for i := range sizes1 {
		if gotSizes1[i] != sizes1[i] {
			t.Fatalf("receiver 1, datagram %d: %d bytes, want %d", i, gotSizes1[i], sizes1[i])
		}
	}
}

// TestBatchSend flushes a batch of datagrams to several destinations in
// sendmmsg calls, with a GSO run among them: every datagram the kernel
// accepts arrives once, in order per destination, and the ones it refuses
// (a broadcast address, an address of the other family) are skipped
// without holding up the rest.
func TestBatchSend(t *testing.T) {
	for _, tt := range []struct {
		name   string
		single bool // as without sendmmsg (ENOSYS): one sendmsg per message
	}{{"sendmmsg", false}, {"sendmsg", true}} {
		t.Run(tt.name, func(t *testing.T) {
			r1, r2 := udpSocket(t), udpSocket(t)
			s := sendingShard(t, udpSocket(t))
			s.bs.single = tt.single
			w1, w2, sz := sendPlan(t, s, addrOf(r1), addrOf(r2))
			s.flushSends()
			checkDelivery(t, s, r1, r2, w1, w2, sz)
			if s.ep.gsoOff.Load() {
				t.Error("a refused ordinary datagram turned GSO off")
			}
		})
	}
}

// TestBatchSendGSORefused makes the kernel refuse GSO (UDP checksums off
// on the socket: Linux then fails every segmented send with EINVAL): the
// sender turns GSO off for the endpoint and sends the run's datagrams one
// per message, so nothing is lost.
func TestBatchSendGSORefused(t *testing.T) {
	u := udpSocket(t)
	s := sendingShard(t, u)
	if !s.bs.gso {
		t.Skip("the kernel has no UDP GSO")
	}
	rc, _ := u.SyscallConn()
	var serr error
	_ = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_NO_CHECK, 1)
	})
	if serr != nil {
		t.Skipf("SO_NO_CHECK: %v", serr)
	}
	r1, r2 := udpSocket(t), udpSocket(t)
	w1, w2, sz := sendPlan(t, s, addrOf(r1), addrOf(r2))
	s.flushSends()
	checkDelivery(t, s, r1, r2, w1, w2, sz)
	if !s.ep.gsoOff.Load() {
		// Linux (4.18 and later) refuses segmented sends on a socket
		// without checksums; a kernel that does not leaves this path
		// unreachable here.
		t.Skip("the kernel sent GSO without UDP checksums; the refusal path was not exercised")
	}
}

// TestBatchSendClosedSocket flushes into a closed socket: nothing is sent,
// nothing panics, and the batch is emptied for reuse.
func TestBatchSendClosedSocket(t *testing.T) {
	u := udpSocket(t)
	s := sendingShard(t, u)
	r := udpSocket(t)
	for i := range 10 {
		queue(s, addrOf(r), 100+i, byte(i))
	}
	u.Close()
	s.flushSends()
	if len(s.out.pkts) != 0 || len(s.out.buf) != 0 {
		t.Fatalf("send batch not emptied: %d datagrams", len(s.out.pkts))
	}
	if got, _ := readTags(t, r); len(got) != 0 {
		t.Fatalf("%d datagrams arrived from a closed socket", len(got))
	}
}

// readingEndpoint is a server-style endpoint on a fresh socket: batch
// reader (GRO when the kernel has it) and one session, id 9, whose shard
// does not run.
func readingEndpoint(t testing.TB, gro bool) (*endpoint, *Conn, *net.UDPConn) {
	t.Helper()
	u := udpSocket(t)
	set, err := (&Config{}).resolve()
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(u, set, 1)
	ep.batch = newBatchReader(u, gro)
	if ep.batch == nil {
		t.Fatal("no batch reader on a *net.UDPConn")
	}
	c := &Conn{id: 9, ep: ep, heapIndex: -1}
	c.shard = ep.shardFor(c.id)
	ep.table.set(c.id, c)
	return ep, c, u
}

// transport writes a transport datagram of size bytes for session 9 with
// the counter seq.
func transport(size int, seq uint64) []byte {
	b := make([]byte, size)
	putTransportHeader(b, 9, seq, 0)
	return b
}

// TestBatchRead reads a GSO run (merged by GRO where the kernel does it)
// and single datagrams from two senders with recvmmsg: every datagram
// reaches the session's shard once, whole, in order, and the read loop
// needs far fewer reads than datagrams.
func TestBatchRead(t *testing.T) {
	ep, c, u := readingEndpoint(t, true)
	to := addrOf(u)
	s1 := sendingShard(t, udpSocket(t))
	s2 := udpSocket(t)
	const run = 20
	for i := range uint64(run) {
		b := s1.sendRoom()[:1200]
		copy(b, transport(1200, i))
		s1.commitSend(1200, to, c)
	}
	s1.flushSends()
	for i := range uint64(5) {
		if _, err := s2.WriteToUDPAddrPort(transport(150, 100+i), to); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	reads := 0
	for len(seqs) < run+5 && reads < run+5 {
		if done, err := ep.readOnce(); done {
			t.Fatal(err)
		}
		reads++
		for len(c.shard.in) > 0 {
			b := <-c.shard.in
			for _, p := range b.pkts[:b.n] {
				h, _ := parseTransportHeader(p.buf[:p.n])
				if want := 1200; h.counter() >= 100 {
					want = 150
					if p.n != want {
						t.Fatalf("datagram %d: %d bytes, want %d", h.counter(), p.n, want)
					}
				} else if p.n != want || !bytes.Equal(p.buf[:p.n], transport(1200, h.counter())) {
					t.Fatalf("datagram %d: %d bytes, not what was sent", h.counter(), p.n)
				}
				seqs = append(seqs, h.counter())
			}
			c.shard.discardBatch(b)
		}
	}
	if len(seqs) != run+5 {
		t.Fatalf("got %d datagrams in %d reads, want %d", len(seqs), reads, run+5)
	}
	var a, b []uint64
	for _, q := range seqs {
		if q >= 100 {
			b = append(b, q)
		} else {
			a = append(a, q)
		}
	}
	for i := range a {
		if a[i] != uint64(i) {
			t.Fatalf("first sender's datagrams arrived as %v", a)
		}
	}
	for i := range b {
		if b[i] != uint64(100+i) {
			t.Fatalf("second sender's datagrams arrived as %v", b)
		}
	}
	t.Logf("%d datagrams in %d reads", len(seqs), reads)
	if drops := ep.drops.snapshot().Total(); drops != 0 {
		t.Fatalf("%d datagrams dropped", drops)
	}
}

// TestBatchReadTruncated sends a datagram larger than a slot (no GRO:
// slots of maxDatagram bytes) between two good ones: it is counted
// Malformed, and the others are routed.
func TestBatchReadTruncated(t *testing.T) {
	ep, c, u := readingEndpoint(t, false)
	snd := udpSocket(t)
	for _, b := range [][]byte{transport(100, 1), transport(maxDatagram+500, 2), {}, transport(100, 3)} {
		if _, err := snd.WriteToUDPAddrPort(b, addrOf(u)); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for range 4 {
		if len(got) == 2 && ep.drops.malformed.Load() == 2 {
			break
		}
		if done, err := ep.readOnce(); done {
			t.Fatal(err)
		}
		for _, seqs := range drainShard(c.shard) {
			got = append(got, seqs...)
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("routed %v, want [1 3]", got)
	}
	if m := ep.drops.malformed.Load(); m != 2 {
		t.Fatalf("malformed = %d, want 2 (the truncated and the empty datagram)", m)
	}
}

// TestBatchReadClosed closes the socket under the batch reader: the read
// loop ends with net.ErrClosed, or with nil once the endpoint is closing.
func TestBatchReadClosed(t *testing.T) {
	for _, closing := range []bool{false, true} {
		ep, _, u := readingEndpoint(t, true)
		if closing {
			ep.signalClose()
		}
		done := make(chan error, 1)
		go func() { done <- ep.readLoop() }()
		time.Sleep(10 * time.Millisecond) // let it block in recvmmsg
		u.Close()
		select {
		case err := <-done:
			if closing && err != nil {
				t.Fatalf("closing endpoint: read loop returned %v, want nil", err)
			}
			if !closing && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("closed socket: read loop returned %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("read loop did not end after its socket closed")
		}
	}
}
