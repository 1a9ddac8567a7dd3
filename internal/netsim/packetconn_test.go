package netsim

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPacketConnReadDeadline(t *testing.T) {
	tests := []struct {
		name     string
		initial  time.Duration // read deadline set before ReadFrom blocks
		change   time.Duration // when, after blocking, the deadline is changed; 0: never
		newValue time.Duration // new deadline, relative to the change; 0: clear it
		send     time.Duration // when a packet is sent; 0: never
		wantErr  bool
		wantAt   time.Duration // when ReadFrom returns
	}{
		{name: "expires", initial: 100 * time.Millisecond, wantErr: true, wantAt: 100 * time.Millisecond},
		{name: "packet first", initial: 100 * time.Millisecond, send: 30 * time.Millisecond, wantAt: 30 * time.Millisecond},
		{name: "extended while blocked", initial: 100 * time.Millisecond, change: 50 * time.Millisecond, newValue: time.Second, wantErr: true, wantAt: 1050 * time.Millisecond},
		{name: "shortened while blocked", initial: time.Hour, change: 50 * time.Millisecond, newValue: 10 * time.Millisecond, wantErr: true, wantAt: 60 * time.Millisecond},
		{name: "cleared while blocked", initial: 100 * time.Millisecond, change: 50 * time.Millisecond, send: 5 * time.Second, wantAt: 5 * time.Second},
		{name: "set while blocked without deadline", change: 50 * time.Millisecond, newValue: 10 * time.Millisecond, wantErr: true, wantAt: 60 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, a, b := pair(t, 1, 0)
				start := time.Now()
				if tt.initial > 0 {
					require.NoError(t, b.SetReadDeadline(start.Add(tt.initial)))
				}
				go func() {
					if tt.change > 0 {
						time.Sleep(tt.change)
						var dl time.Time
						if tt.newValue > 0 {
							dl = time.Now().Add(tt.newValue)
						}
						_ = b.SetReadDeadline(dl)
					}
				}()
				go func() {
					if tt.send > 0 {
						time.Sleep(tt.send)
						_, _ = a.WriteTo([]byte("hi"), b.LocalAddr())
					}
				}()
				n, from, err := b.ReadFrom(make([]byte, 10))
				require.Equal(t, tt.wantAt, time.Since(start))
				if !tt.wantErr {
					require.NoError(t, err)
					require.Equal(t, 2, n)
					require.Equal(t, a.LocalAddr().String(), from.String())
					return
				}
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				var ne net.Error
				require.ErrorAs(t, err, &ne)
				require.True(t, ne.Timeout())
				synctest.Wait() // let the helper goroutines finish
			})
		})
	}
}

func TestPacketConnPassedDeadlineBeatsQueuedData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t, 1, 0)
		_, err := a.WriteTo([]byte("x"), b.LocalAddr())
		require.NoError(t, err)
		require.NoError(t, b.SetReadDeadline(time.Now()))
		_, _, err = b.ReadFrom(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "as in package net")
		require.NoError(t, b.SetDeadline(time.Time{}))
		nn, _, err := b.ReadFrom(make([]byte, 1))
		require.NoError(t, err)
		require.Equal(t, 1, nn)
	})
}

func TestPacketConnCloseUnblocksReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNetwork(t, 1, 0)
		c, err := n.Listen("10.0.0.1:4000")
		require.NoError(t, err)
		const readers = 3
		errs := make(chan error, readers)
		for range readers {
			go func() {
				_, _, err := c.ReadFrom(make([]byte, 10))
				errs <- err
			}()
		}
		synctest.Wait() // all readers are blocked
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "idempotent")
		for range readers {
			require.ErrorIs(t, <-errs, net.ErrClosed)
		}
		_, err = c.WriteTo([]byte("x"), c.LocalAddr())
		require.ErrorIs(t, err, net.ErrClosed)
		require.ErrorIs(t, c.SetReadDeadline(time.Now()), net.ErrClosed)

		// The address is free again.
		c2, err := n.Listen("10.0.0.1:4000")
		require.NoError(t, err)
		require.NoError(t, c2.Close())
	})
}

func TestPacketConnManyReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t, 1, 0)
		const readers, packets = 4, 400
		got := make(chan struct{}, packets)
		for range readers {
			go func() {
				buf := make([]byte, 64)
				for {
					if _, _, err := b.ReadFrom(buf); err != nil {
						return
					}
					got <- struct{}{}
				}
			}()
		}
		sendSeq(t, a, b.LocalAddr(), packets, 0)
		for range packets {
			<-got // a lost wake-up would deadlock here, and synctest reports it
		}
		require.NoError(t, b.Close())
		synctest.Wait()
	})
}

func TestNetworkListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNetwork(t, 1, 0)
		c := listen(t, n, "10.0.0.1:4000")
		ua, ok := c.LocalAddr().(*net.UDPAddr)
		require.True(t, ok, "LocalAddr is a *net.UDPAddr")
		require.Equal(t, netip.MustParseAddrPort("10.0.0.1:4000"), ua.AddrPort())

		_, err := n.Listen("10.0.0.1:4000")
		require.ErrorIs(t, err, ErrAddrInUse)

		p1 := listen(t, n, "10.0.0.1:0")
		p2 := listen(t, n, "10.0.0.1:0")
		require.NotZero(t, p1.LocalAddr().(*net.UDPAddr).Port)
		require.NotEqual(t, p1.LocalAddr().String(), p2.LocalAddr().String())
		require.Equal(t, "127.0.0.1:7", listen(t, n, ":7").LocalAddr().String())
		require.Equal(t, "[fd00::1]:7", listen(t, n, "[fd00::1]:7").LocalAddr().String())

		for _, bad := range []string{"10.0.0.1", "example.com:80", "10.0.0.1:70000", "10.0.0.1:x"} {
			_, err := n.Listen(bad)
			require.ErrorIs(t, err, ErrInvalidAddr, bad)
		}

		neg := NewNetwork(1)
		neg.QueueLen = -1
		_, err = neg.Listen("10.0.0.1:1")
		require.Error(t, err)
	})
}

func TestPacketConnWriteErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1, 0)
		_, err := a.WriteTo(make([]byte, MaxDatagram+1), b.LocalAddr())
		require.ErrorIs(t, err, ErrMessageTooLarge)
		nn, err := a.WriteTo(make([]byte, MaxDatagram), b.LocalAddr())
		require.NoError(t, err)
		require.Equal(t, MaxDatagram, nn)

		_, err = a.WriteTo([]byte("x"), &fakeAddr{"not an address"})
		require.ErrorIs(t, err, ErrInvalidAddr)

		require.NoError(t, a.SetWriteDeadline(time.Now()))
		_, err = a.WriteTo([]byte("x"), b.LocalAddr())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.True(t, errors.As(err, &ne) && ne.Timeout())
		require.Equal(t, Stats{Sent: 1, Delivered: 1}, n.Stats(), "failed writes are not sent")

		// A short buffer truncates, as UDP does.
		buf := make([]byte, 10)
		nn, _, err = b.ReadFrom(buf)
		require.NoError(t, err)
		require.Equal(t, 10, nn)
	})
}

func TestPacketConnRebind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, client, server := pair(t, 1, 0)
		old := client.LocalAddr()
		n.SetLink(old, server.LocalAddr(), Impairment{Delay: 10 * time.Millisecond})
		_, err := client.WriteTo(seqPacket(1, time.Now()), server.LocalAddr())
		require.NoError(t, err)
		_, err = server.WriteTo(seqPacket(2, time.Now()), old)
		require.NoError(t, err)

		require.NoError(t, client.Rebind("10.0.0.99:6000"))
		require.Equal(t, "10.0.0.99:6000", client.LocalAddr().String())
		require.NoError(t, client.Rebind("10.0.0.99:6000"), "same address is a no-op")

		// The packet already queued at the client stays; the one in flight
		// from the old address still arrives, with the old source.
		got := drain(t, client, time.Second)
		require.Len(t, got, 1)
		require.Equal(t, uint32(2), got[0].seq)
		got = drain(t, server, time.Second)
		require.Len(t, got, 1)
		require.Equal(t, old.String(), got[0].from.String())

		// New packets come from the new address, which receives; the old
		// address is gone and its link no longer applies.
		start := time.Now()
		_, err = client.WriteTo(seqPacket(3, time.Now()), server.LocalAddr())
		require.NoError(t, err)
		got = drain(t, server, time.Second)
		require.Len(t, got, 1)
		require.Equal(t, "10.0.0.99:6000", got[0].from.String())
		require.Equal(t, start, got[0].at, "the old link's delay does not apply")

		_, err = server.WriteTo(seqPacket(4, time.Now()), old)
		require.NoError(t, err)
		_, err = server.WriteTo(seqPacket(5, time.Now()), got[0].from)
		require.NoError(t, err)
		got = drain(t, client, time.Second)
		require.Len(t, got, 1)
		require.Equal(t, uint32(5), got[0].seq)

		require.ErrorIs(t, client.Rebind(server.LocalAddr().String()), ErrAddrInUse)
		require.ErrorIs(t, client.Rebind("bad"), ErrInvalidAddr)
		require.NoError(t, client.Rebind("10.0.0.99:0"))
		require.NotEqual(t, "10.0.0.99:6000", client.LocalAddr().String())
		other := listen(t, n, "10.0.0.99:6000")
		require.NotNil(t, other, "the old address is free")
	})
}
