package uxp

import (
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uxp-go/uxp/internal/testutil"
)

// panicServer panics in OnNewConnComing for the sessions panicOn picks.
type panicServer struct {
	recordServer
	panicOn func(c *Conn) bool
}

func (s *panicServer) OnNewConnComing(c *Conn) {
	if s.panicOn(c) {
		panic("application bug in OnNewConnComing")
	}
	s.recordServer.OnNewConnComing(c)
}

// TestCallbackPanics: a panic in AuthorizeClient (a decision callback on
// the handshake goroutine) refuses that client and nothing else; a panic in
// OnNewConnComing (a session callback on a shard) ends that session only.
// Both are logged with their stack and counted. On a build without the
// recover, the first panic kills the test binary.
func TestCallbackPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		good, bad := testKeys(t), testKeys(t)
		var logs testutil.SyncBuffer
		srvCfg := &Config{
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Identity: IdentityConfig{AuthorizeClient: func(k PublicKey) bool {
				if k == bad.Public {
					panic("application bug in AuthorizeClient")
				}
				return true
			}},
		}
		cliCfg := &Config{Identity: IdentityConfig{ClientPrivateKey: good.Private}}
		p := newSimPair(t, 21, srvCfg, cliCfg, true)
		time.Sleep(50 * time.Millisecond) // the server has the good client's first packet

		// The panicking decision is a refusal: an authenticated one, so
		// the client learns at once.
		_, _, err := p.addClient(t, "10.0.0.3:5000", &Config{Identity: IdentityConfig{ClientPrivateKey: bad.Private}})
		require.ErrorIs(t, err, ErrClientRejected)
		st := p.srv.Stats()
		require.Equal(t, uint64(1), st.CallbackPanics, "counted once")
		require.Equal(t, uint64(1), st.Handshake.RefusedClientKey)
		require.Equal(t, 1, st.Sessions, "only the good client")
		require.Equal(t, 0, st.HalfOpen, "no state for the refused client")
		require.Contains(t, logs.String(), "AuthorizeClient")
		require.Contains(t, logs.String(), "application bug in AuthorizeClient")
		require.Contains(t, logs.String(), "callback_panic_test.go", "the log carries the stack")

		// The server goes on: another good client connects (later: an IK
		// initiation's timestamp must increase, and virtual time has not
		// moved yet).
		time.Sleep(time.Millisecond)
		_, _, err = p.addClient(t, "10.0.0.4:5000", cliCfg)
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, 2, p.srv.Stats().Sessions)
	})

	synctest.Test(t, func(t *testing.T) {
		srvH := &panicServer{}
		n := 0
		srvH.panicOn = func(*Conn) bool { n++; return n == 2 } // the second session
		p := newSimPair(t, 22, nil, nil, true)
		require.NoError(t, p.srv.Close())
		pc, err := p.net.Listen("10.0.0.1:4001")
		require.NoError(t, err)
		srv, err := NewServer(pc, srvH, &Config{PrivateKey: p.keys.Private})
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		t.Cleanup(func() { srv.Close() })

		var clients []*Client
		for i := range 3 {
			cpc, err := p.net.Listen("10.0.1." + string(rune('1'+i)) + ":5000")
			require.NoError(t, err)
			h := newRecordConn()
			c, err := NewClient(cpc, pc.LocalAddr(), h, &Config{ServerPublicKey: p.keys.Public})
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			err = c.Start(t.Context())
			if i == 1 && err != nil {
				// The server may close the session before Start returns.
				require.ErrorIs(t, err, ErrPeerClosed)
			} else {
				require.NoError(t, err)
			}
			clients = append(clients, c)
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		st := srv.Stats()
		require.Equal(t, uint64(1), st.CallbackPanics)
		require.Equal(t, 2, st.Sessions, "only the session whose callback panicked ended")
		srvH.mu.Lock()
		connClose := append([]error(nil), srvH.connClose...)
		srvH.mu.Unlock()
		require.Len(t, connClose, 1)
		var cpe *CallbackPanicError
		require.ErrorAs(t, connClose[0], &cpe)
		require.Equal(t, "OnNewConnComing", cpe.Callback)
		if c := clients[1].Conn(); c != nil { // nil if Start already failed with ErrPeerClosed
			require.ErrorIs(t, c.Err(), ErrPeerClosed, "the peer was told")
		}
		require.NoError(t, clients[0].Conn().Err())
		require.NoError(t, clients[2].Conn().Err())
		require.True(t, strings.Contains(connClose[0].Error(), "panicked"))
	})
}
