package uxp

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
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
