package uxp

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func resetTrigger(id uint32) []byte {
	pkt := make([]byte, minTransportSize)
	putTransportHeader(pkt, id, 0, 0)
	return pkt
}

func spoofedAddrPort(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), uint16(1024+i%5000))
}

// TestResetGlobalRate: a reset is an oracle for the token of any session
// ID, so resets over all sources are held to resetGlobalRate per second.
func TestResetGlobalRate(t *testing.T) {
	r := newResetSender(testKeys(t).Private)
	t0 := time.Unix(100, 0)
	count := func(now time.Time, from int) int {
		n := 0
		for i := range 1000 {
			if _, ok := r.answer(resetTrigger(uint32(i+1)), spoofedAddrPort(from+i), now); ok {
				n++
			}
		}
		return n
	}
	require.Equal(t, resetGlobalRate, count(t0, 0), "the burst")
	require.Equal(t, 0, count(t0.Add(50*time.Millisecond), 1000))
	require.Equal(t, resetGlobalRate, count(t0.Add(1050*time.Millisecond), 2000), "one second's worth later")
	require.LessOrEqual(t, resetGlobalRate, 10, "the documented rate (security.md)")
}

// TestResetSpoofedSourcesCannotFillTable: a flood from spoofed sources
// creates per-source buckets only for the resets the global limit lets
// through, and a source over its own limit spends none of the global budget.
func TestResetSpoofedSourcesCannotFillTable(t *testing.T) {
	r := newResetSender(testKeys(t).Private)
	t0 := time.Unix(100, 0)
	for i := range 2 * resetSources {
		r.answer(resetTrigger(7), spoofedAddrPort(i), t0)
	}
	require.LessOrEqual(t, r.perIP.len(), resetGlobalRate, "buckets only for sources that got a reset")

	r = newResetSender(testKeys(t).Private)
	a, b := spoofedAddrPort(1), spoofedAddrPort(2)
	sent := func(from netip.AddrPort) int {
		n := 0
		for range 100 {
			if _, ok := r.answer(resetTrigger(7), from, t0); ok {
				n++
			}
		}
		return n
	}
	require.Equal(t, resetBurst, sent(a))
	require.Equal(t, resetBurst, sent(b), "a's refused attempts did not use up the global budget")
}

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
