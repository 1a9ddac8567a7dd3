package sockio

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// readAll reads with r until want datagrams arrived (or 4*want reads),
// splitting GRO runs, and returns them with their senders and the number
// of reads it took.
func readAll(t *testing.T, r *Reader, want int) (dgrams [][]byte, from []netip.AddrPort, reads int) {
	t.Helper()
	for len(dgrams) < want && reads < 4*want {
		n, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		reads++
		for i := range n {
			b, seg, f, trunc := r.Message(i)
			if trunc {
				t.Fatalf("message %d truncated", i)
			}
			for len(b) > 0 {
				k := min(seg, len(b))
				dgrams = append(dgrams, bytes.Clone(b[:k]))
				from = append(from, f)
				b = b[k:]
			}
		}
	}
	return dgrams, from, reads
}

// TestBatchReader reads a GSO run (merged by GRO where the kernel does it)
// and single datagrams from a second sender with recvmmsg: every datagram
// comes out once, whole, with its sender, in order per sender.
func TestBatchReader(t *testing.T) {
	u := udpSocket(t)
	sock := NewSocket(u, 0)
	r := NewReader(&sock, true, testMaxDatagram, 0)
	if r == nil {
		t.Fatal("no batch reader on a *net.UDPConn")
	}
	ts := newTestSender(t, udpSocket(t))
	s2 := udpSocket(t)
	const run = 20
	for i := range run {
		ts.queue(addrOf(u), 1200, byte(i))
	}
	ts.flush()
	for i := range 5 {
		if _, err := s2.WriteToUDPAddrPort(bytes.Repeat([]byte{byte(100 + i)}, 150), addrOf(u)); err != nil {
			t.Fatal(err)
		}
	}
	dgrams, from, reads := readAll(t, r, run+5)
	if len(dgrams) != run+5 {
		t.Fatalf("got %d datagrams in %d reads, want %d", len(dgrams), reads, run+5)
	}
	// Per sender, the tags in the order they were sent.
	var got [2][]byte
	var want [2][]byte
	for i := range run {
		want[0] = append(want[0], byte(i))
	}
	for i := range 5 {
		want[1] = append(want[1], byte(100+i))
	}
	for i, d := range dgrams {
		if bytes.Count(d, d[:1]) != len(d) {
			t.Fatalf("datagram %d is not one tag repeated", i)
		}
		switch tag := d[0]; {
		case tag < 100 && len(d) == 1200 && from[i] == addrOf(ts.sock.UDP()):
			got[0] = append(got[0], tag)
		case tag >= 100 && len(d) == 150 && from[i] == addrOf(s2):
			got[1] = append(got[1], tag)
		default:
			t.Fatalf("datagram %d: tag %d, %d bytes from %v", i, tag, len(d), from[i])
		}
	}
	for k := range got {
		if !bytes.Equal(got[k], want[k]) {
			t.Fatalf("sender %d's datagrams arrived as %v, want %v", k+1, got[k], want[k])
		}
	}
	t.Logf("%d datagrams in %d reads", len(dgrams), reads)
}

// TestBatchReaderTruncated reads, without GRO (slots of maxDatagram
// bytes), a datagram larger than a slot between two good ones: it is
// reported truncated, and the others come out whole.
func TestBatchReaderTruncated(t *testing.T) {
	u := udpSocket(t)
	sock := NewSocket(u, 0)
	r := NewReader(&sock, false, testMaxDatagram, 0)
	snd := udpSocket(t)
	for _, n := range []int{100, testMaxDatagram + 500, 0, 101} {
		if _, err := snd.WriteToUDPAddrPort(make([]byte, n), addrOf(u)); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	var truncs []bool
	for len(sizes) < 4 {
		n, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			b, seg, _, trunc := r.Message(i)
			if seg != len(b) {
				t.Fatalf("message %d: segment %d of a %d-byte message without GRO", i, seg, len(b))
			}
			sizes, truncs = append(sizes, len(b)), append(truncs, trunc)
		}
	}
	if want := []int{100, testMaxDatagram, 0, 101}; !slices.Equal(sizes, want) {
		t.Fatalf("sizes %v, want %v", sizes, want)
	}
	if want := []bool{false, true, false, false}; !slices.Equal(truncs, want) {
		t.Fatalf("truncated %v, want %v", truncs, want)
	}
}

// TestBatchReaderClosed closes the socket under a blocked Read: it returns
// an error that is net.ErrClosed, and NoBatchIO does not mistake it for a
// missing recvmmsg.
func TestBatchReaderClosed(t *testing.T) {
	u := udpSocket(t)
	sock := NewSocket(u, 0)
	r := NewReader(&sock, true, testMaxDatagram, 0)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block in recvmmsg
	u.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) || NoBatchIO(err) {
			t.Fatalf("Read on a closed socket returned %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after its socket closed")
	}
	if !NoBatchIO(&net.OpError{Op: "read", Net: "udp", Err: syscall.ENOSYS}) {
		t.Fatal("NoBatchIO(ENOSYS) = false")
	}
}

// TestGROSegment parses UDP_GRO control data, including malformed data
// from a confused kernel, without reading past it: a bad header ends the
// parse with the size of one datagram.
func TestGROSegment(t *testing.T) {
	good := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&good[0]))
	h.Level, h.Type = solUDP, udpGRO
	h.SetLen(syscall.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&good[syscall.CmsgLen(0)])) = 1400
	other := bytes.Clone(good)
	(*syscall.Cmsghdr)(unsafe.Pointer(&other[0])).Type = udpSegment
	long := bytes.Clone(good)
	(*syscall.Cmsghdr)(unsafe.Pointer(&long[0])).SetLen(len(good) + 1)
	short := bytes.Clone(good)
	(*syscall.Cmsghdr)(unsafe.Pointer(&short[0])).SetLen(1)
	for _, tt := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"none", nil, 9000},
		{"gro", good, 1400},
		{"other then gro", append(bytes.Clone(other), good...), 1400},
		{"other type", other, 9000},
		{"length past the data", long, 9000},
		{"length below a header", short, 9000},
		{"cut short", good[:syscall.CmsgLen(0)-1], 9000},
	} {
		if got := groSegment(tt.oob, 9000); got != tt.want {
			t.Errorf("%s: segment %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestSockaddrAddrPort decodes both address families as the kernel
// writes them, unmapping IPv4-mapped IPv6, and an unknown family as the
// zero AddrPort.
func TestSockaddrAddrPort(t *testing.T) {
	var sa syscall.RawSockaddrInet6
	v4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa))
	*v4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: [4]byte{192, 0, 2, 1}}
	putPort(&v4.Port, 4242)
	if got, want := sockaddrAddrPort(&sa), netip.MustParseAddrPort("192.0.2.1:4242"); got != want {
		t.Errorf("AF_INET: %v, want %v", got, want)
	}
	for _, s := range []string{"[2001:db8::1]:53", "[::ffff:192.0.2.7]:9"} {
		ap := netip.MustParseAddrPort(s)
		sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ap.Addr().As16()}
		putPort(&sa.Port, ap.Port())
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if got := sockaddrAddrPort(&sa); got != want {
			t.Errorf("AF_INET6 %s: %v, want %v", s, got, want)
		}
	}
	sa.Family = syscall.AF_UNIX
	if got := sockaddrAddrPort(&sa); got.IsValid() {
		t.Errorf("AF_UNIX: %v, want the zero AddrPort", got)
	}
}
