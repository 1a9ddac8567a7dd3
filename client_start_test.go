package uxp

import (
	"context"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// lowOrderPoints are X25519 public keys of small order (libsodium's
// blocklist): a Diffie-Hellman with any of them gives the all-zero secret.
var lowOrderPoints = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func lowOrderKey(t testing.TB, s string) PublicKey {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	var k PublicKey
	copy(k[:], b)
	return k
}

// TestNewClientRejectsLowOrderKey: a server key no handshake can use is a
// configuration error, not a Start that fails (or hangs) later.
func TestNewClientRejectsLowOrderKey(t *testing.T) {
	srv := newLoopbackPC(t)
	for _, s := range lowOrderPoints {
		t.Run(s[:8], func(t *testing.T) {
			pc := newLoopbackPC(t)
			_, err := NewClient(pc, srv.LocalAddr(), nil, &Config{ServerPublicKey: lowOrderKey(t, s)})
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "ServerPublicKey", ce.Field)
		})
	}
	pc := newLoopbackPC(t)
	c, err := NewClient(pc, srv.LocalAddr(), nil, &Config{ServerPublicKey: testKeys(t).Public})
	require.NoError(t, err, "a real key is accepted")
	require.NoError(t, c.Close())
}

// TestStartEarlyFailureReturns: when Start fails before the endpoint runs
// (here the handshake cannot be built), Start and Close return instead of
// waiting for worker goroutines that never started.
func TestStartEarlyFailureReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 21, nil, nil, false)
		// Past NewClient's check, as a future failure of the handshake
		// set-up would be.
		p.cli.set.serverPublicKey = lowOrderKey(t, lowOrderPoints[0])
		err := p.cli.Start(context.Background())
		require.Error(t, err)
		require.ErrorIs(t, p.cli.Start(context.Background()), ErrConnClosed, "a failed Client is closed")
		require.NoError(t, p.cli.Close())
	})
}

// TestCloseStopsStart: Close during a handshake that gets no answer makes
// Start return ErrConnClosed at once, not at the handshake timeout.
func TestCloseStopsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 22, nil, nil, false)
		p.net.SetDefault(netsim.Impairment{Blackhole: true})
		start := time.Now()
		time.AfterFunc(100*time.Millisecond, func() { p.cli.Close() })
		err := p.cli.Start(context.Background())
		took := time.Since(start)
		require.ErrorIs(t, err, ErrConnClosed)
		require.False(t, errors.Is(err, ErrHandshakeFailed), "not a timeout")
		require.Equal(t, 100*time.Millisecond, took, "returns as soon as Close is called")
	})
}

// TestStartFailsWhenSessionSetupFails: a genuine response that the client
// cannot turn into a session (here: a cipher it cannot build, forced after
// the initiation went out, which a server from before suite negotiation
// leaves in force) fails Start at once, counted, instead of leaving it to
// time out.
func TestStartFailsWhenSessionSetupFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 26, &Config{hooks: &testHooks{oldHello: true}}, nil, false)
		var hold atomic.Bool
		hold.Store(true)
		p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), netsim.Impairment{Drop: func(b []byte) bool {
			return b[0] == msgResponse && hold.Load()
		}})
		errc := make(chan error, 1)
		start := time.Now()
		go func() { errc <- p.cli.Start(context.Background()) }()
		time.Sleep(100 * time.Millisecond) // the first response was dropped
		p.cli.at.hs.Load().cipher = Cipher(0xff)
		hold.Store(false) // the server answers the retransmission
		err := <-errc
		require.Error(t, err)
		require.False(t, errors.Is(err, ErrHandshakeFailed), "not a timeout: %v", err)
		require.Less(t, time.Since(start), time.Second)
		require.Equal(t, uint64(1), p.cli.Stats().Drops.Malformed)
	})
}

func TestHandshakeRetransmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Lose the first two initiations and the first response.
		var inits, resps atomic.Int32
		p := newSimPair(t, 10, nil, nil, false)
		p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Drop: func(b []byte) bool {
			return b[0] == msgInitiation && inits.Add(1) <= 2
		}})
		p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), netsim.Impairment{Drop: func(b []byte) bool {
			return b[0] == msgResponse && resps.Add(1) <= 1
		}})
		require.NoError(t, p.cli.Start(context.Background()))
		require.EqualValues(t, 4, inits.Load())
		require.EqualValues(t, 1, p.srv.Stats().HandshakesCompleted, "a retransmitted initiation is answered from the half-open table, not with a new session")
	})
}

func TestStartCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 11, nil, nil, false)
		p.net.SetDefault(netsim.Impairment{Blackhole: true})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		err := p.cli.Start(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, errors.Is(err, ErrHandshakeFailed))
		require.ErrorIs(t, p.cli.Start(ctx), ErrConnClosed, "a failed Client is closed")
	})
}
