package netsim

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// pair returns two endpoints on a fresh network, a at 10.0.0.1:4000 and b
// at 10.0.0.2:5000.
func pair(t testing.TB, seed uint64, queueLen int) (*Network, *PacketConn, *PacketConn) {
	t.Helper()
	n := newTestNetwork(t, seed, queueLen)
	return n, listen(t, n, "10.0.0.1:4000"), listen(t, n, "10.0.0.2:5000")
}

func TestNetworkLossRate(t *testing.T) {
	const packets = 20000
	for _, loss := range []float64{0, 0.01, 0.1, 0.3, 0.5, 0.9, 1} {
		t.Run(fmt.Sprintf("loss=%v", loss), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, a, b := pair(t, 42, packets)
				n.SetDefault(Impairment{Loss: loss})
				sendSeq(t, a, b.LocalAddr(), packets, 0)
				got := drain(t, b, time.Second)

				s := n.Stats()
				require.EqualValues(t, packets, s.Sent)
				require.EqualValues(t, len(got), s.Delivered)
				require.InDelta(t, loss, float64(s.Dropped)/packets, 0.015, "loss %v", loss)
				requireBalanced(t, s)
			})
		})
	}
}

func TestNetworkDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const packets = 20000
		n, a, b := pair(t, 7, 2*packets)
		n.SetDefault(Impairment{Duplicate: 0.25})
		sendSeq(t, a, b.LocalAddr(), packets, 0)
		got := drain(t, b, time.Second)

		s := n.Stats()
		require.InDelta(t, 0.25, float64(s.Duplicated)/packets, 0.015)
		require.Len(t, got, packets+int(s.Duplicated))
		require.Len(t, seqSet(got), packets, "every packet arrives at least once")
		requireBalanced(t, s)
	})
}

func TestNetworkReorder(t *testing.T) {
	tests := []struct {
		name string
		imp  Impairment
	}{
		{name: "no base delay", imp: Impairment{Reorder: 0.2, ReorderDelay: 5 * time.Millisecond}},
		{name: "with base delay", imp: Impairment{Reorder: 0.2, Delay: 20 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const packets = 1000
				n, a, b := pair(t, 3, 0)
				n.SetLink(a.LocalAddr(), b.LocalAddr(), tt.imp)
				got := sendAndCollect(t, a, b, packets, time.Millisecond)

				s := n.Stats()
				require.Len(t, got, packets, "reordering loses nothing")
				require.InDelta(t, 0.2, float64(s.Reordered)/packets, 0.05)
				inversions := 0
				for i := 1; i < len(got); i++ {
					if got[i].seq < got[i-1].seq {
						inversions++
					}
				}
				require.Positive(t, inversions, "later packets overtake held ones")
				// A held packet arrives exactly the extra delay late.
				extra := tt.imp.reorderDelay()
				for _, r := range got {
					lat := r.at.Sub(r.sent)
					require.True(t, lat == tt.imp.Delay || lat == tt.imp.Delay+extra, "latency %v", lat)
				}
			})
		})
	}
}

func TestNetworkDelayAndJitter(t *testing.T) {
	tests := []struct {
		name   string
		imp    Impairment
		wantIn bool // arrivals stay in send order
	}{
		{name: "delay", imp: Impairment{Delay: 50 * time.Millisecond}, wantIn: true},
		{name: "delay and jitter", imp: Impairment{Delay: 50 * time.Millisecond, Jitter: 20 * time.Millisecond}},
		{name: "jitter only", imp: Impairment{Jitter: 5 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const packets = 500
				n, a, b := pair(t, 11, 0)
				n.SetLink(a.LocalAddr(), b.LocalAddr(), tt.imp)

				got := sendAndCollect(t, a, b, packets, 100*time.Microsecond)

				require.Len(t, got, packets)
				var lats []time.Duration
				for _, r := range got {
					lat := r.at.Sub(r.sent)
					require.GreaterOrEqual(t, lat, tt.imp.Delay)
					if tt.imp.Jitter == 0 {
						require.Equal(t, tt.imp.Delay, lat, "fake time makes the delay exact")
					} else {
						require.Less(t, lat, tt.imp.Delay+tt.imp.Jitter)
					}
					lats = append(lats, lat)
				}
				if tt.imp.Jitter > 0 {
					require.Greater(t, slices.Max(lats)-slices.Min(lats), tt.imp.Jitter/2, "jitter spreads latencies")
				}
				if tt.wantIn {
					require.True(t, slices.IsSortedFunc(got, func(x, y received) int { return int(x.seq) - int(y.seq) }))
				}
				requireBalanced(t, n.Stats())
			})
		})
	}
}

func TestNetworkBlackhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1, 0)
		sendSeq(t, a, b.LocalAddr(), 10, 0)
		// Blackhole only a -> b; b -> a still works.
		n.SetLink(a.LocalAddr(), b.LocalAddr(), Impairment{Blackhole: true})
		sendSeq(t, a, b.LocalAddr(), 10, 0)
		require.Len(t, drain(t, b, time.Second), 10, "only the packets before the blackhole")
		sendSeq(t, b, a.LocalAddr(), 5, 0)
		require.Len(t, drain(t, a, time.Second), 5)

		s := n.Stats()
		require.EqualValues(t, 10, s.Dropped)
		requireBalanced(t, s)
	})
}

func TestNetworkDropHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1, 0)
		// Drop shards 3, 7 and 9 of every group of 10, as an FEC test would.
		n.SetDefault(Impairment{Drop: func(p []byte) bool {
			r, err := parseSeqPacket(p, time.Time{}, nil)
			require.NoError(t, err) // Drop runs on the writer, the test goroutine
			switch r.seq % 10 {
			case 3, 7, 9:
				return true
			}
			return false
		}})
		sendSeq(t, a, b.LocalAddr(), 100, 0)
		got := seqSet(drain(t, b, time.Second))
		require.Len(t, got, 70)
		for i := range uint32(100) {
			want := i%10 != 3 && i%10 != 7 && i%10 != 9
			require.Equal(t, want, got[i], "packet %d", i)
		}
	})
}

func TestNetworkSeedDeterminism(t *testing.T) {
	imp := Impairment{Loss: 0.3, Duplicate: 0.1, Jitter: 3 * time.Millisecond}
	// run returns the arrival order of sequence numbers, which captures
	// drops, duplicates and jitter.
	run := func(t *testing.T, seed uint64) []uint32 {
		var order []uint32
		synctest.Test(t, func(t *testing.T) {
			n, a, b := pair(t, seed, 0)
			n.SetDefault(imp)
			sendSeq(t, a, b.LocalAddr(), 2000, 0)
			for _, r := range drain(t, b, time.Second) {
				order = append(order, r.seq)
			}
		})
		return order
	}
	first := run(t, 99)
	require.NotEmpty(t, first)
	require.Equal(t, first, run(t, 99), "same seed, same outcome")
	require.NotEqual(t, first, run(t, 100), "different seed, different outcome")
}

func TestNetworkInject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1, 0)
		n.SetDefault(Impairment{Blackhole: true}) // Inject bypasses impairment
		spoofed := &fakeAddr{"192.0.2.66:666"}
		n.Inject(spoofed, b.LocalAddr(), seqPacket(7, time.Now()))
		n.Inject(a.LocalAddr(), b.LocalAddr(), seqPacket(8, time.Now()))

		got := drain(t, b, time.Second)
		require.Len(t, got, 2)
		require.Equal(t, uint32(7), got[0].seq)
		require.Equal(t, "192.0.2.66:666", got[0].from.String())
		require.Equal(t, uint32(8), got[1].seq)
		require.Equal(t, a.LocalAddr().String(), got[1].from.String())
		require.Equal(t, Stats{Sent: 2, Delivered: 2}, n.Stats())
	})
}

func TestNetworkQueueOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 16
		n, a, b := pair(t, 1, limit)
		// Nobody reads b: writes must neither block nor fail.
		sendSeq(t, a, b.LocalAddr(), 3*limit, 0)
		s := n.Stats()
		require.EqualValues(t, limit, s.Delivered)
		require.EqualValues(t, 2*limit, s.Dropped)

		got := drain(t, b, time.Second)
		require.Len(t, got, limit)
		require.Equal(t, uint32(0), got[0].seq, "the oldest packets are kept")
		// Space frees up once read.
		sendSeq(t, a, b.LocalAddr(), 1, 0)
		require.Len(t, drain(t, b, time.Second), 1)
	})
}

func TestNetworkUnknownDestination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, _ := pair(t, 1, 0)
		nowhere := &fakeAddr{"10.9.9.9:9"}
		nn, err := a.WriteTo([]byte("x"), nowhere)
		require.NoError(t, err, "UDP drops silently")
		require.Equal(t, 1, nn)
		require.Equal(t, Stats{Sent: 1, Dropped: 1}, n.Stats())
	})
}

func TestNetworkCloseDropsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(1)
		a, err := n.Listen("10.0.0.1:1")
		require.NoError(t, err)
		b, err := n.Listen("10.0.0.2:1")
		require.NoError(t, err)
		n.SetDefault(Impairment{Delay: time.Second})
		sendSeq(t, a, b.LocalAddr(), 5, 0)
		require.NoError(t, n.Close())
		require.NoError(t, n.Close(), "idempotent")

		_, _, err = b.ReadFrom(make([]byte, 10))
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = n.Listen("10.0.0.3:1")
		require.ErrorIs(t, err, net.ErrClosed)
		time.Sleep(2 * time.Second)
		s := n.Stats()
		require.Equal(t, Stats{Sent: 5, Dropped: 5}, s)
	})
}

// fakeAddr is a net.Addr that is not a *net.UDPAddr.
type fakeAddr struct{ s string }

func (a *fakeAddr) Network() string { return "udp" }
func (a *fakeAddr) String() string  { return a.s }
