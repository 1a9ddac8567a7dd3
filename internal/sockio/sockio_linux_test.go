package sockio

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/testutil"
)

const testMaxDatagram = 2048 // uxp's receive buffer size

// udpSocket is testutil.UDPSocket.
func udpSocket(t testing.TB) *net.UDPConn { return testutil.UDPSocket(t) }

func addrOf(u *net.UDPConn) netip.AddrPort { return u.LocalAddr().(*net.UDPAddr).AddrPort() }

// testSender is a Sender on u with its batch and GSO switch, as one shard
// of an endpoint has them.
type testSender struct {
	sock   Socket
	gsoOff atomic.Bool
	s      *Sender
	out    Batch
	tooBig []uint32 // sessions (tags) of the datagrams refused as too big
}

func (ts *testSender) countTooBig(session uint32) { ts.tooBig = append(ts.tooBig, session) }

func newTestSender(t testing.TB, u *net.UDPConn) *testSender {
	t.Helper()
	ts := &testSender{sock: NewSocket(u, 4<<20), out: NewBatch(testMaxDatagram)}
	ts.s = NewSender(&ts.sock, &ts.gsoOff, slog.New(slog.DiscardHandler), ts.countTooBig)
	if ts.s == nil {
		t.Fatal("no batch sender on a *net.UDPConn")
	}
	return ts
}

// queue adds a datagram of size bytes, each byte tag, to the batch,
// flushing first when it is full, as a shard does.
func (ts *testSender) queue(to netip.AddrPort, size int, tag byte) {
	if ts.out.Full() {
		ts.flush()
		ts.out.Grow()
	}
	b := ts.out.Room()[:size]
	for i := range b {
		b[i] = tag
	}
	ts.out.Commit(size, to, uint32(tag))
}

func (ts *testSender) flush() {
	ts.s.Flush(&ts.out)
	ts.out.Reset()
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
