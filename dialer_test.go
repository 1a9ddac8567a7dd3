package uxp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestDialerManySessions: 300 sessions to two servers over one socket,
// dialled concurrently, each echoing its own messages over a lossy link;
// every message comes back exactly once and in order, on its own session.
func TestDialerManySessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newDialerNet(t, 41, 2, netsim.Impairment{Delay: 5 * time.Millisecond, Loss: 0.05}, &Config{Workers: 2})
		const sessions, msgs = 300, 5
		handlers := make([]*recordConn, sessions)
		conns := make([]*Conn, sessions)
		var wg sync.WaitGroup
		for i := range sessions {
			handlers[i] = newRecordConn()
			wg.Go(func() {
				c, err := n.d.Dial(context.Background(), n.addrs[i%2], handlers[i])
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					return
				}
				conns[i] = c
				for j := range msgs {
					writeRetry(t, c, testMessage(i*msgs+j, 200))
				}
			})
		}
		wg.Wait()
		time.Sleep(3 * time.Second)
		require.Equal(t, sessions, n.d.Stats().Sessions)
		ids := make(map[uint32]bool)
		for i, h := range handlers {
			require.NotNil(t, conns[i])
			require.False(t, ids[conns[i].ID()], "session IDs are unique")
			ids[conns[i].ID()] = true
			ready, got, closed := h.snapshot()
			require.Equal(t, 1, ready)
			require.Empty(t, closed)
			require.Len(t, got, msgs, "session %d", i)
			for j, m := range got {
				require.True(t, bytes.Equal(testMessage(i*msgs+j, 200), m), "session %d message %d", i, j)
			}
		}
		require.Equal(t, sessions/2, n.servers[0].Stats().Sessions)
		require.Equal(t, sessions/2, n.servers[1].Stats().Sessions)

		// One session closing leaves the others alone.
		require.NoError(t, conns[0].Close())
		<-conns[0].Done()
		writeRetry(t, conns[1], testMessage(9999, 200))
		time.Sleep(time.Second)
		_, got, _ := handlers[1].snapshot()
		require.Len(t, got, msgs+1)
		require.Equal(t, sessions-1, n.d.Stats().Sessions)

		require.NoError(t, n.d.Close())
		for i := 1; i < sessions; i++ {
			_, _, closed := handlers[i].snapshot()
			require.Len(t, closed, 1, "session %d", i)
			require.ErrorIs(t, closed[0], ErrConnClosed)
		}
		// A close frame is sent once; those lost end by the idle timeout.
		time.Sleep(defaultIdleTimeout + time.Second)
		require.Zero(t, n.servers[0].Stats().Sessions+n.servers[1].Stats().Sessions, "every server session ended")
	})
}

// TestDialerFailures: a Dial to a silent address times out without
// disturbing the Dialer; Close ends a Dial in progress; Dial after Close
// and a bad address fail with clear errors; nothing leaks (synctest.Test
// fails on a goroutine left blocked in its bubble).
func TestDialerFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newDialerNet(t, 42, 1, netsim.Impairment{Delay: time.Millisecond}, &Config{HandshakeTimeout: time.Second})
		silent, err := n.net.Listen("10.0.9.9:4000")
		require.NoError(t, err)
		_, err = n.d.Dial(context.Background(), silent.LocalAddr(), nil)
		require.ErrorIs(t, err, ErrHandshakeFailed)
		c, err := n.d.Dial(context.Background(), n.addrs[0], nil)
		require.NoError(t, err, "the Dialer still works after a failed Dial")

		_, err = n.d.Dial(context.Background(), &net.UDPAddr{IP: net.IPv4(10, 0, 1, 1)}, nil)
		require.ErrorContains(t, err, "not a UDP address")

		errc := make(chan error, 1)
		go func() {
			_, err := n.d.Dial(context.Background(), silent.LocalAddr(), nil)
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, n.d.Close())
		require.ErrorIs(t, <-errc, ErrConnClosed)
		<-c.Done()
		_, err = n.d.Dial(context.Background(), n.addrs[0], nil)
		require.ErrorIs(t, err, ErrConnClosed)
		require.NoError(t, n.d.Close(), "Close is idempotent")
		silent.Close()
		n.servers[0].Close()
		n.net.Close()
		// No leak check by goroutine count here: runtime.NumGoroutine is
		// process-wide and sees other tests' goroutines come and go.
		// synctest.Test itself fails if a goroutine of the bubble (the
		// Dialer's read loop, its workers, a Dial) is left blocked.
	})
}

// TestDialerConfigErrors: a Dialer needs a PacketConn and a usable server
// key.
func TestDialerConfigErrors(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	_, err = NewDialer(nil, &Config{})
	require.ErrorContains(t, err, "nil PacketConn")
	var ce *ConfigError
	_, err = NewDialer(pc, &Config{})
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "ServerPublicKey", ce.Field)
}

// TestDialerLoopback: a Dialer on a real 127.0.0.1 socket holds 100
// sessions to a real server.
func TestDialerLoopback(t *testing.T) {
	kp := testKeys(t)
	spc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := NewServer(spc, echoServer{}, &Config{PrivateKey: kp.Private})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer srv.Close()
	cpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := NewDialer(cpc, &Config{ServerPublicKey: kp.Public})
	require.NoError(t, err)
	defer d.Close()
	const sessions = 100
	handlers := make([]*recordConn, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		handlers[i] = newRecordConn()
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := d.Dial(ctx, spc.LocalAddr(), handlers[i])
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			writeRetry(t, c, testMessage(i, 100))
		})
	}
	wg.Wait()
	for i, h := range handlers {
		select {
		case <-h.gotMsg:
		case <-time.After(10 * time.Second):
			t.Fatalf("session %d: no echo", i)
		}
		_, got, _ := h.snapshot()
		require.Len(t, got, 1)
		require.True(t, bytes.Equal(testMessage(i, 100), got[0]))
	}
	require.Equal(t, sessions, d.Stats().Sessions)
	require.Equal(t, sessions, srv.Stats().Sessions)
}
