package uxp

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestMaxSessionsHalfOpenFlood: valid initiations that are never
// confirmed fill the half-open table up to MaxSessions, but do not lock a
// real client out: only established sessions fill the server, and the
// server, now treating itself as under load, lets the client in after a
// cookie round trip.
func TestMaxSessionsHalfOpenFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max = 10
		p := newSimPair(t, 24, &Config{MaxSessions: max}, nil, false)
		attacker, err := p.net.Listen("10.0.0.66:7000")
		require.NoError(t, err)
		for range max {
			ini := testInitiation(t, p.keys.Public, clientIdentity{}).initiation()
			p.net.Inject(attacker.LocalAddr(), p.srvPC.LocalAddr(), ini)
		}
		time.Sleep(50 * time.Millisecond)
		st := p.srv.Stats()
		require.Equal(t, max, st.HalfOpen)
		require.Zero(t, st.Handshake.CookiesSent, "below the limit, no cookies")

		// More of them now only get cookie replies: no new half-open state.
		for range max {
			ini := testInitiation(t, p.keys.Public, clientIdentity{}).initiation()
			p.net.Inject(attacker.LocalAddr(), p.srvPC.LocalAddr(), ini)
		}
		time.Sleep(50 * time.Millisecond)
		st = p.srv.Stats()
		require.Equal(t, max, st.HalfOpen)
		require.Equal(t, uint64(max), st.Handshake.CookiesSent)

		require.NoError(t, p.cli.Start(t.Context()), "a real client still gets in")
		time.Sleep(50 * time.Millisecond)
		st = p.srv.Stats()
		require.Equal(t, 1, st.Sessions)
		require.Zero(t, st.Handshake.RefusedFull)
		require.Greater(t, st.Handshake.CookiesSent, uint64(max), "it went through the cookie exchange")
	})
}

// TestMaxSessionsHardBound: two handshakes race for the last slot. The
// one confirmed second is closed unannounced, so the application never
// sees more than MaxSessions sessions.
func TestMaxSessionsHardBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 25, &Config{MaxSessions: 1}, nil, false)
		// Hold back the first client's transport packets: its session
		// stays half-open at the server.
		var hold atomic.Bool
		hold.Store(true)
		p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Drop: func(b []byte) bool {
			return b[0] == msgTransport && hold.Load()
		}})
		require.NoError(t, p.cli.Start(t.Context()))
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, 1, p.srv.Stats().HalfOpen)

		_, _, err := p.addClient(t, "10.0.0.3:5000", nil)
		require.NoError(t, err, "a half-open session does not fill the server")
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, 1, p.srv.Stats().Sessions)

		hold.Store(false)
		conn := p.cli.Conn()
		_, err = conn.Write([]byte("late"))
		require.NoError(t, err)
		<-conn.Done()
		require.ErrorIs(t, conn.Err(), ErrPeerClosed, "the server refused the late confirmation")
		require.ErrorIs(t, conn.Err(), ErrServerFull, "and said why")
		time.Sleep(50 * time.Millisecond)
		st := p.srv.Stats()
		require.Equal(t, 1, st.Sessions)
		require.Equal(t, 0, st.HalfOpen)
		require.Equal(t, uint64(1), st.Handshake.RefusedFull)
		conns, _, _ := p.srvH.counts()
		require.Equal(t, 1, conns, "only one session was announced")
	})
}

func TestMaxSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 8, &Config{MaxSessions: 1}, nil, true)
		time.Sleep(50 * time.Millisecond)
		_, _, err := p.addClient(t, "10.0.0.3:5000", nil)
		require.ErrorIs(t, err, ErrServerFull)
		st := p.srv.Stats()
		require.Equal(t, uint64(1), st.Handshake.RefusedFull)
		require.Equal(t, 1, st.Sessions)
		require.Equal(t, 0, st.HalfOpen)

		// Room again once the first session has gone.
		require.NoError(t, p.cli.Close())
		time.Sleep(100 * time.Millisecond)
		_, _, err = p.addClient(t, "10.0.0.4:5000", nil)
		require.NoError(t, err)
	})
}
