package uxp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/sockio"
	"github.com/uxp-go/uxp/internal/testutil"
)

// The read loop over the batch reader: recvmmsg, GRO split, routing and
// the hand-off to the shards. The Reader and Sender alone are tested in
// internal/sockio.

// udpSocket is testutil.UDPSocket.
func udpSocket(t testing.TB) *net.UDPConn { return testutil.UDPSocket(t) }

func addrOf(u *net.UDPConn) netip.AddrPort { return u.LocalAddr().(*net.UDPAddr).AddrPort() }

// sendingShard is the one shard of an endpoint on u that is never started:
// the test fills its send batch and flushes it by hand. The send path
// itself is tested in internal/sockio (TestBatchSend*).
func sendingShard(t testing.TB, u *net.UDPConn) *shard {
	t.Helper()
	set, err := (&Config{}).resolve()
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(u, set, 1, nopOwner{})
	s := ep.shards[0]
	if s.bs == nil {
		t.Fatal("no batch sender on a *net.UDPConn")
	}
	return s
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
	ep := newEndpoint(u, set, 1, nopOwner{})
	ep.batch = sockio.NewReader(&ep.sock, gro, maxDatagram, 0)
	if ep.batch == nil {
		t.Fatal("no batch reader on a *net.UDPConn")
	}
	c := &Conn{connFixed: connFixed{id: 9, ep: ep}, connShard: connShard{heapIndex: -1}}
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
				h, _ := parseTransportHeader(p.buf.dgram()[:p.n])
				if want := 1200; h.counter() >= 100 {
					want = 150
					if p.n != want {
						t.Fatalf("datagram %d: %d bytes, want %d", h.counter(), p.n, want)
					}
				} else if p.n != want || !bytes.Equal(p.buf.dgram()[:p.n], transport(1200, h.counter())) {
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
