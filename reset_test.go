package uxp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uxp-go/uxp/internal/netsim"
)

// TestResetOnlyFromServer: a reset with the right token but from another
// address than the server's is ignored (and counted).
func TestResetOnlyFromServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 23, nil, nil, true)
		conn := p.cli.Conn()
		var rst [resetSize]byte
		tok := resetToken(ptr(resetKey(p.keys.Private)), conn.ID())
		putReset(&rst, conn.ID(), &tok)

		elsewhere := netip.MustParseAddrPort("10.0.0.99:4000")
		p.net.Inject(net.UDPAddrFromAddrPort(elsewhere), p.cliPC.LocalAddr(), rst[:])
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, conn.Err(), "a reset from elsewhere does nothing")
		require.Equal(t, uint64(1), p.cli.Stats().Drops.AuthFailed)
		require.Zero(t, p.cli.Stats().Handshake.ResetsReceived)

		p.net.Inject(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), rst[:])
		<-conn.Done()
		require.ErrorIs(t, conn.Err(), ErrStatelessReset, "the same reset from the server's address ends the session")
	})
}

// TestStatelessReset restarts the server (same address, same key) under a
// live session. The next packet the client sends gets a stateless reset
// and the client learns within about one round trip, instead of at its
// idle timeout.
func TestStatelessReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 20 * time.Millisecond
		p := newSimPair(t, 5, nil, nil, false)
		p.net.SetDefault(netsim.Impairment{Delay: oneWay})
		require.NoError(t, p.cli.Start(context.Background()))
		conn := p.cli.Conn()
		_, err := conn.Write([]byte("before"))
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)

		p.restartServer(t, netsim.Impairment{Delay: oneWay})

		// A forged reset (wrong token) is ignored.
		id := conn.ID()
		forged := [resetSize]byte{}
		putReset(&forged, id, &[resetTokenSize]byte{1})
		p.net.Inject(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), forged[:])
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, conn.Err(), "a reset with the wrong token does nothing")
		require.Equal(t, uint64(1), p.cli.Stats().Drops.AuthFailed)

		start := time.Now()
		_, err = conn.Write([]byte("after the restart"))
		require.NoError(t, err)
		<-conn.Done()
		took := time.Since(start)
		t.Logf("client learned of the reset after %v (RTT %v, idle timeout %v)", took, 2*oneWay, defaultIdleTimeout)
		require.ErrorIs(t, conn.Err(), ErrStatelessReset)
		require.ErrorIs(t, conn.Err(), net.ErrClosed)
		require.GreaterOrEqual(t, took, 2*oneWay)
		require.LessOrEqual(t, took, 2*oneWay+5*time.Millisecond, "within about one round trip")
		require.Equal(t, uint64(1), p.cli.Stats().Handshake.ResetsReceived)
		require.GreaterOrEqual(t, p.srv.Stats().Handshake.ResetsSent, uint64(1))
		_, _, closed := p.cliH.snapshot()
		require.Len(t, closed, 1)
		require.ErrorIs(t, closed[0], ErrStatelessReset)

		// The server never answers a reset.
		before := p.srv.Stats()
		p.net.Inject(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), forged[:])
		time.Sleep(100 * time.Millisecond)
		after := p.srv.Stats()
		require.Equal(t, before.Handshake.ResetsSent, after.Handshake.ResetsSent)
		require.Equal(t, before.Drops.Malformed+1, after.Drops.Malformed)
	})
}
