package netsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newTestNetwork returns a Network that is closed when the test ends. Call
// it inside the synctest bubble that uses the network. queueLen sets
// Network.QueueLen (0 for the default).
func newTestNetwork(t testing.TB, seed uint64, queueLen int) *Network {
	t.Helper()
	n := NewNetwork(seed)
	n.QueueLen = queueLen
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

// listen opens an endpoint and closes it when the test ends.
func listen(t testing.TB, n *Network, addr string) *PacketConn {
	t.Helper()
	c, err := n.Listen(addr)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// seqPacket is a test datagram carrying a sequence number and the time it
// was sent.
func seqPacket(seq uint32, sent time.Time) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b, seq)
	binary.BigEndian.PutUint64(b[4:], uint64(sent.UnixNano()))
	return b
}

type received struct {
	seq  uint32
	sent time.Time
	at   time.Time
	from net.Addr
}

func parseSeqPacket(b []byte, at time.Time, from net.Addr) (received, error) {
	if len(b) != 12 {
		return received{}, fmt.Errorf("test packet is %d bytes, want 12", len(b))
	}
	return received{
		seq:  binary.BigEndian.Uint32(b),
		sent: time.Unix(0, int64(binary.BigEndian.Uint64(b[4:]))),
		at:   at,
		from: from,
	}, nil
}

// sendSeq writes count sequence-numbered packets from c to dst, gap apart
// (no sleep when gap is zero).
func sendSeq(t testing.TB, c net.PacketConn, dst net.Addr, count int, gap time.Duration) {
	t.Helper()
	for i := range count {
		_, err := c.WriteTo(seqPacket(uint32(i), time.Now()), dst)
		require.NoError(t, err)
		if gap > 0 {
			time.Sleep(gap)
		}
	}
}

// drain reads every packet that arrives at c within wait. Inside a synctest
// bubble wait costs no real time.
func drain(t testing.TB, c net.PacketConn, wait time.Duration) []received {
	t.Helper()
	got, err := collect(c, wait)
	require.NoError(t, err)
	return got
}

// collect is drain for goroutines other than the test's, which must not
// call t.FailNow.
func collect(c net.PacketConn, wait time.Duration) ([]received, error) {
	return collectIdle(c, wait, false)
}

// collectIdle reads until no packet arrives for idle, for real sockets,
// where waiting costs real time.
func collectIdle(c net.PacketConn, idle time.Duration, rearm bool) ([]received, error) {
	if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return nil, err
	}
	var got []received
	buf := make([]byte, 64)
	for {
		if rearm {
			if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
				return got, err
			}
		}
		n, from, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, c.SetReadDeadline(time.Time{})
		}
		if err != nil {
			return got, err
		}
		r, err := parseSeqPacket(buf[:n], time.Now(), from)
		if err != nil {
			return got, err
		}
		got = append(got, r)
	}
}

// sendAndCollect sends count packets from a to b, gap apart, while another
// goroutine reads b, so that arrival times are measured as they happen. It
// returns what arrived within a second of the last send.
func sendAndCollect(t testing.TB, a, b net.PacketConn, count int, gap time.Duration) []received {
	t.Helper()
	type result struct {
		got []received
		err error
	}
	done := make(chan result)
	go func() {
		got, err := collect(b, time.Duration(count)*gap+time.Second)
		done <- result{got, err}
	}()
	sendSeq(t, a, b.LocalAddr(), count, gap)
	r := <-done
	require.NoError(t, r.err)
	return r.got
}

// seqSet returns the sequence numbers in got as a set.
func seqSet(got []received) map[uint32]bool {
	s := make(map[uint32]bool, len(got))
	for _, r := range got {
		s[r.seq] = true
	}
	return s
}

// requireBalanced checks the Stats invariant once nothing is in flight.
func requireBalanced(t testing.TB, s Stats) {
	t.Helper()
	require.Equal(t, s.Sent+s.Duplicated, s.Delivered+s.Dropped, "stats %+v", s)
}
