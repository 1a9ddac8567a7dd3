package netsim

import (
	"net"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// loopbackPair returns a wrapped sender and a plain receiver, both real UDP
// sockets on 127.0.0.1 port 0, closed when the test ends.
func loopbackPair(t testing.TB, imp Impairment, seed uint64) (*Conn, net.PacketConn) {
	t.Helper()
	listenUDP := func() net.PacketConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		return pc
	}
	c := Wrap(listenUDP(), imp, seed)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	rx := listenUDP()
	t.Cleanup(func() { require.NoError(t, rx.Close()) })
	return c, rx
}

func TestConnLoss(t *testing.T) {
	tests := []struct {
		name string
		loss float64
	}{
		{"none", 0},
		{"third", 0.3},
		{"all", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const packets = 2000
			c, rx := loopbackPair(t, Impairment{Loss: tt.loss}, 5)
			got := sendAndCollectReal(t, c, rx, packets)

			s := c.Stats()
			require.EqualValues(t, packets, s.Sent)
			require.InDelta(t, tt.loss, float64(s.Dropped)/packets, 0.04)
			requireBalanced(t, s)
			// The kernel may still lose a few on loopback, never add any.
			require.LessOrEqual(t, uint64(len(got)), s.Delivered)
			if s.Delivered > 0 {
				require.NotEmpty(t, got)
			}
		})
	}
}

// sendAndCollectReal writes count packets through c to rx, pacing them so
// the receive buffer keeps up, and returns what rx read.
func sendAndCollectReal(t testing.TB, c *Conn, rx net.PacketConn, count int) []received {
	t.Helper()
	type result struct {
		got []received
		err error
	}
	done := make(chan result)
	go func() {
		got, err := collectIdle(rx, 200*time.Millisecond, true)
		done <- result{got, err}
	}()
	for i := range count {
		_, err := c.WriteTo(seqPacket(uint32(i), time.Now()), rx.LocalAddr())
		require.NoError(t, err)
		if i%100 == 99 {
			time.Sleep(time.Millisecond)
		}
	}
	r := <-done
	require.NoError(t, r.err)
	return r.got
}

func TestConnDelayOrdering(t *testing.T) {
	const delay = 80 * time.Millisecond
	c, rx := loopbackPair(t, Impairment{Delay: delay}, 1)

	start := time.Now()
	for i := range 20 {
		_, err := c.WriteTo(seqPacket(uint32(i), time.Now()), rx.LocalAddr())
		require.NoError(t, err)
	}
	// A packet sent later without delay overtakes the delayed ones.
	c.SetImpairment(Impairment{})
	_, err := c.WriteTo(seqPacket(100, time.Now()), rx.LocalAddr())
	require.NoError(t, err)

	got, err := collectIdle(rx, 300*time.Millisecond, true)
	require.NoError(t, err)
	require.Len(t, got, 21)
	require.Equal(t, uint32(100), got[0].seq)
	require.Less(t, got[0].at.Sub(start), delay)
	for i, r := range got[1:] {
		require.Equal(t, uint32(i), r.seq, "equal delays keep send order")
		require.GreaterOrEqual(t, r.at.Sub(r.sent), delay)
	}
	s := c.Stats()
	require.Equal(t, Stats{Sent: 21, Delivered: 21}, s)
}

func TestConnBlackholeMidStream(t *testing.T) {
	c, rx := loopbackPair(t, Impairment{}, 1)
	sendSeq(t, c, rx.LocalAddr(), 5, 0)
	c.SetImpairment(Impairment{Blackhole: true})
	sendSeq(t, c, rx.LocalAddr(), 5, 0)
	got, err := collectIdle(rx, 100*time.Millisecond, true)
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.Equal(t, Stats{Sent: 10, Delivered: 5, Dropped: 5}, c.Stats())
}

func TestConnCloseJoinsScheduler(t *testing.T) {
	baseline := runtime.NumGoroutine()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	c := Wrap(pc, Impairment{Delay: time.Hour}, 1)

	buf := []byte("reused")
	_, err = c.WriteTo(buf, pc.LocalAddr())
	require.NoError(t, err)
	copy(buf, "XXXXXX") // WriteTo copied the packet

	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "idempotent")
	_, err = c.WriteTo(buf, pc.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed)
	_, _, err = c.ReadFrom(buf)
	require.ErrorIs(t, err, net.ErrClosed, "the inner socket is closed")
	require.Equal(t, Stats{Sent: 1, Dropped: 1}, c.Stats(), "the delayed packet dies at Close")

	// Close joined the scheduler, but the runtime may still be tearing
	// down unrelated goroutines, so poll briefly. (Not require.Eventually:
	// it runs the condition on a goroutine of its own.)
	requireGoroutinesAtMost(t, baseline)
}

func requireGoroutinesAtMost(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), want, "goroutine leak")
}

// TestConnOverNetwork runs Wrap over the in-memory network inside a bubble,
// where its scheduler goroutine and timer use fake time: the delays are
// exact and synctest fails the test if Close leaks the goroutine.
func TestConnOverNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1, 0)
		imp := Impairment{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond, Duplicate: 0.2, Reorder: 0.1}
		c := Wrap(a, imp, 8)
		got := sendAndCollect(t, c, b, 300, time.Millisecond)

		s := c.Stats()
		require.Len(t, got, int(s.Delivered))
		require.EqualValues(t, 300+s.Duplicated, s.Delivered)
		require.Positive(t, s.Reordered)
		for _, r := range got {
			lat := r.at.Sub(r.sent)
			require.GreaterOrEqual(t, lat, imp.Delay)
			require.Less(t, lat, imp.Delay+imp.Jitter+DefaultReorderDelay)
		}
		require.Equal(t, Stats{Sent: s.Delivered, Delivered: s.Delivered}, n.Stats(), "the network itself is perfect")

		// Leave a packet in flight: Close must still stop the goroutine.
		_, err := c.WriteTo([]byte("late"), b.LocalAddr())
		require.NoError(t, err)
		require.NoError(t, c.Close())
		requireBalanced(t, c.Stats())
	})
}
