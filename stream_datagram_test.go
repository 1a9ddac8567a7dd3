package uxp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestStreamDatagrams: datagrams travel both ways beside a bulk byte
// stream whose flow control still holds (the reader is slow; everything
// arrives intact); ReadDatagram's queue drops the oldest when full and
// counts it; ReadDatagram honours ctx and ends with the session.
func TestStreamDatagrams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 8, netsim.Impairment{Delay: 5 * time.Millisecond}, nil, nil)
		const bulk = 4 << 20 // more than the receive buffer: flow control must engage
		data := bytes.Repeat([]byte("0123456789abcdef"), bulk/16)
		werr := make(chan error, 1)
		go func() {
			_, err := p.cli.Write(data)
			werr <- err
		}()
		got := make(chan []byte, 1)
		go func() {
			var buf bytes.Buffer
			chunk := make([]byte, 64<<10)
			for buf.Len() < bulk {
				n, err := p.srv.Read(chunk)
				if err != nil {
					break
				}
				buf.Write(chunk[:n])
				time.Sleep(time.Millisecond) // a slow reader
			}
			got <- buf.Bytes()
		}()
		// The bulk write fills the client's send queue, which datagrams
		// share: they wait for room like any write.
		writeDgram := func(s *StreamConn, msg []byte) {
			for {
				err := s.WriteDatagram(msg)
				if !errors.Is(err, ErrWouldBlock) {
					require.NoError(t, err)
					return
				}
				require.NoError(t, s.Session().WaitWritable(context.Background()))
			}
		}
		for i := range 20 {
			writeDgram(p.cli, fmt.Appendf(nil, "c%d", i))
			writeDgram(p.srv, fmt.Appendf(nil, "s%d", i))
			time.Sleep(10 * time.Millisecond)
		}
		ctx := context.Background()
		for i := range 20 {
			b, err := p.srv.ReadDatagram(ctx)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("c%d", i), string(b))
			b, err = p.cli.ReadDatagram(ctx)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("s%d", i), string(b))
		}
		require.NoError(t, <-werr)
		require.True(t, bytes.Equal(data, <-got), "the stream is intact")

		// The queue keeps the newest streamDatagramQueue datagrams.
		for i := range streamDatagramQueue + 10 {
			require.NoError(t, p.cli.WriteDatagram(fmt.Appendf(nil, "%d", i)))
			if i%50 == 0 {
				time.Sleep(10 * time.Millisecond) // within the send queue
			}
		}
		time.Sleep(100 * time.Millisecond)
		require.EqualValues(t, 10, p.srv.DatagramsDropped())
		b, err := p.srv.ReadDatagram(ctx)
		require.NoError(t, err)
		require.Equal(t, "10", string(b), "the oldest were dropped")
		for range streamDatagramQueue - 1 {
			_, err := p.srv.ReadDatagram(ctx)
			require.NoError(t, err)
		}

		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err = p.srv.ReadDatagram(tctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		// A datagram that arrived before the end is still read; then the
		// end shows.
		require.NoError(t, p.cli.WriteDatagram([]byte("last")))
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, p.cli.Close())
		b, err = p.srv.ReadDatagram(ctx)
		require.NoError(t, err)
		require.Equal(t, "last", string(b))
		_, err = p.srv.ReadDatagram(ctx)
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = p.cli.ReadDatagram(ctx)
		require.ErrorIs(t, err, ErrConnClosed)
		require.ErrorIs(t, p.cli.WriteDatagram([]byte("x")), ErrConnClosed)
	})
}

// TestDialerDialConnAndAcceptStream: a Dialer's DialConn gives a net.Conn
// that talks to a Listener's AcceptStream; closing it leaves the Dialer
// able to dial again.
func TestDialerDialConnAndAcceptStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := netsim.NewNetwork(9)
		t.Cleanup(func() { nw.Close() })
		kp := testKeys(t)
		spc, err := nw.Listen("10.0.0.1:4000")
		require.NoError(t, err)
		ln, err := Listen(spc, &Config{PrivateKey: kp.Private})
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		dpc, err := nw.Listen("10.0.0.2:5000")
		require.NoError(t, err)
		d, err := NewDialer(dpc, &Config{ServerPublicKey: kp.Public})
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })

		for round := range 2 {
			var conn net.Conn
			conn, err = d.DialConn(context.Background(), spc.LocalAddr())
			require.NoError(t, err)
			srv, err := ln.AcceptStream()
			require.NoError(t, err)
			require.Equal(t, conn.(*StreamConn).Session().ID(), srv.Session().ID())
			msg := fmt.Appendf(nil, "round %d", round)
			_, err = conn.Write(msg)
			require.NoError(t, err)
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(srv, buf, len(msg))
			require.NoError(t, err)
			require.Equal(t, msg, buf[:n])
			require.NoError(t, conn.Close())
			_, err = srv.Read(buf)
			require.ErrorIs(t, err, io.EOF)
			srv.Close()
		}
		waitFor(t, func() bool { return d.Stats().Sessions == 0 }) // closing a stream ends its session only

		_, err = d.DialConn(context.Background(), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1)})
		require.Error(t, err, "port 0")
		require.NoError(t, ln.Close())
		_, err = ln.AcceptStream()
		require.ErrorIs(t, err, ErrListenerClosed)
	})
}

// closeRecorder is a PacketConn that records whether it was closed.
type closeRecorder struct {
	net.PacketConn
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return c.PacketConn.Close() }

// TestCallerSocketOnFailure: Listen and DialConnOver treat the caller's
// socket the same way when they fail: they close it, whether the
// configuration was bad or (DialConnOver) the handshake failed.
func TestCallerSocketOnFailure(t *testing.T) {
	kp := testKeys(t)
	tests := []struct {
		name string
		run  func(pc net.PacketConn, peer net.Addr) error
	}{
		{"Listen/no private key", func(pc net.PacketConn, _ net.Addr) error {
			_, err := Listen(pc, &Config{})
			return err
		}},
		{"Listen/bad config", func(pc net.PacketConn, _ net.Addr) error {
			_, err := Listen(pc, &Config{PrivateKey: kp.Private, Workers: -1})
			return err
		}},
		{"DialConnOver/no server key", func(pc net.PacketConn, peer net.Addr) error {
			_, err := DialConnOver(context.Background(), pc, peer, &Config{})
			return err
		}},
		{"DialConnOver/handshake fails", func(pc net.PacketConn, peer net.Addr) error {
			_, err := DialConnOver(context.Background(), pc, peer, &Config{ServerPublicKey: kp.Public, HandshakeTimeout: time.Second})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := netsim.NewNetwork(10)
				defer nw.Close()
				pc, err := nw.Listen("10.0.0.2:5000")
				require.NoError(t, err)
				silent, err := nw.Listen("10.0.0.1:4000") // nobody answers
				require.NoError(t, err)
				defer silent.Close()
				rec := &closeRecorder{PacketConn: pc}
				require.Error(t, tt.run(rec, silent.LocalAddr()))
				require.True(t, rec.closed, "the caller's socket is closed on failure")
			})
		})
	}
	require.Error(t, func() error { _, err := Listen(nil, &Config{PrivateKey: kp.Private}); return err }(), "nil PacketConn: an error, no panic")
	require.Error(t, func() error {
		_, err := DialConnOver(context.Background(), nil, &net.UDPAddr{Port: 1}, &Config{ServerPublicKey: kp.Public})
		return err
	}())
}
