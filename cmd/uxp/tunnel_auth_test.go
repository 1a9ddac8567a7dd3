package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/testutil"
)

// TestTunnelServerRequiresClientAuth: a tunnel server refuses to start
// when it would accept any client that knows its public key, unless told
// -insecure-anonymous, and then it says so in its log.
func TestTunnelServerRequiresClientAuth(t *testing.T) {
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	psk := newPSK(t)
	tests := []struct {
		name     string
		identity uxp.IdentityConfig
		opts     tunnelServerOptions
		wantErr  error // nil: starts
		wantLog  string
	}{
		{name: "nothing", wantErr: errNoClientAuth},
		{name: "client key required but no list", identity: uxp.IdentityConfig{RequireClientKey: true}, wantErr: errNoClientAuth},
		{name: "psk", identity: uxp.IdentityConfig{PresharedKey: psk}},
		{name: "allowed keys", identity: uxp.IdentityConfig{AllowedClientKeys: []uxp.PublicKey{ck.Public}}},
		{name: "insecure anonymous", opts: tunnelServerOptions{insecureAnonymous: true}, wantLog: "INSECURE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			cfg := tunnelConfig()
			cfg.PrivateKey = kp.Private
			cfg.Identity = tt.identity
			tt.opts.target, tt.opts.maxStreams = "127.0.0.1:1", defaultMaxStreams
			var log testutil.SyncBuffer
			s, err := newTunnelServer(pc, cfg, tt.opts, newTunnelLogger(&log))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("newTunnelServer: got %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			s.ln.Close()
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log has no %q:\n%s", tt.wantLog, &log)
			}
			if tt.wantLog == "" && strings.Contains(log.String(), "INSECURE") {
				t.Errorf("warning without -insecure-anonymous:\n%s", &log)
			}
		})
	}
}

// TestTunnelClientAuth: only clients holding the tunnel server's
// pre-shared key, or one of its allowed client keys, get a session.
// Knowing the server's public key is not enough.
func TestTunnelClientAuth(t *testing.T) {
	allowed, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pskEnv := startTunnel(t, netsim.Impairment{})
	keysEnv := startTunnelWith(t, tunnelOptions{serverCfg: func(c *uxp.Config) {
		c.Identity = uxp.IdentityConfig{AllowedClientKeys: []uxp.PublicKey{allowed.Public}}
	}})
	tests := []struct {
		name     string
		env      *tunnelEnv
		identity func(env *tunnelEnv) uxp.IdentityConfig
		wantErr  error // nil: connects
	}{
		{name: "psk", env: pskEnv, identity: func(e *tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{PresharedKey: e.psk} }},
		{name: "no psk", env: pskEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{} }, wantErr: uxp.ErrHandshakeFailed},
		{name: "wrong psk", env: pskEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{PresharedKey: newPSK(t)} }, wantErr: uxp.ErrHandshakeFailed},
		{name: "no psk, own key", env: pskEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{ClientPrivateKey: stranger.Private} }, wantErr: uxp.ErrHandshakeFailed},
		{name: "allowed key", env: keysEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{ClientPrivateKey: allowed.Private} }},
		{name: "unknown key", env: keysEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{ClientPrivateKey: stranger.Private} }, wantErr: uxp.ErrClientRejected},
		{name: "anonymous", env: keysEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{} }, wantErr: uxp.ErrClientRejected},
		{name: "anonymous with the other server's psk", env: keysEnv, identity: func(*tunnelEnv) uxp.IdentityConfig { return uxp.IdentityConfig{PresharedKey: pskEnv.psk} }, wantErr: uxp.ErrHandshakeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tunnelConfig()
			cfg.ServerPublicKey = tt.env.srvKey
			cfg.Identity = tt.identity(tt.env)
			cfg.HandshakeTimeout = time.Second
			pc, err := lossyUDP(netsim.Impairment{}, 9)
			if err != nil {
				t.Fatal(err)
			}
			c, err := uxp.DialConnOver(context.Background(), pc, tt.env.srvAddr, cfg)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DialConnOver: got %v, want %v", err, tt.wantErr)
			}
		})
	}
	// Only the two good clients' sessions reached the tunnel servers.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(pskEnv.srvLog.String()+keysEnv.srvLog.String(), "uxp session up") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(pskEnv.srvLog.String(), "uxp session up"); n != 1 {
		t.Errorf("psk server: %d sessions up, want 1:\n%s", n, pskEnv.srvLog)
	}
	if !strings.Contains(keysEnv.srvLog.String(), allowed.Public.String()) {
		t.Errorf("key server did not log the allowed client key of its session:\n%s", keysEnv.srvLog)
	}
	if n := strings.Count(keysEnv.srvLog.String(), "uxp session up"); n != 1 {
		t.Errorf("key server: %d sessions up, want 1:\n%s", n, keysEnv.srvLog)
	}
}

// TestTunnelClientWrongPSK: a tunnel client with the wrong pre-shared key
// gets no session; its TCP connection is closed without any data reaching
// the target, and it says why in its log.
func TestTunnelClientWrongPSK(t *testing.T) {
	env := startTunnelWith(t, tunnelOptions{clientCfg: func(c *uxp.Config) {
		c.Identity.PresharedKey = newPSK(t)
		c.HandshakeTimeout = time.Second
	}})
	got, err := request(env.clientAddr, 'E', []byte("let me in"))
	if len(got) != 0 {
		t.Errorf("got %q back through a tunnel with the wrong psk", got)
	}
	t.Logf("request: %v", err)
	if log := env.cliLog.String(); !strings.Contains(log, "no uxp session") || !strings.Contains(log, "handshake") {
		t.Errorf("client log does not say the handshake failed:\n%s", log)
	}
	if strings.Contains(env.srvLog.String(), "session up") {
		t.Errorf("server accepted a session with the wrong psk:\n%s", env.srvLog)
	}
}

// TestTunnelStreamLimit: a uxp session holds at most max-streams
// forwarded connections at a time; more are refused without reaching the
// target (and logged once), and a freed slot can be used again.
func TestTunnelStreamLimit(t *testing.T) {
	const limit = 3
	env := startTunnelWith(t, tunnelOptions{maxStreams: limit})
	// hold opens a forwarded connection that stays open: the target
	// waits for 4 GiB that never come.
	hold := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", env.clientAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("E\xff\xff\xff\xff\x00\x00\x00\x00")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitLog := func(log *testutil.SyncBuffer, s string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(log.String(), s) < n {
			if time.Now().After(deadline) {
				t.Fatalf("want %d %q lines:\n%s", n, s, log)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var held []net.Conn
	for range limit {
		held = append(held, hold())
	}
	waitLog(env.srvLog, `msg="tunnel: open"`, limit)
	for range 2 {
		c := hold()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The tunnel client closes the refused TCP connection without
		// reading the request we wrote, so the kernel may answer with a
		// reset instead of a FIN: both mean "closed at once".
		if b, err := io.ReadAll(c); len(b) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("connection over the limit: read %q, %v; want it closed at once", b, err)
		}
	}
	if n := strings.Count(env.srvLog.String(), `msg="tunnel: open"`); n != limit {
		t.Errorf("server opened %d connections to the target, want %d:\n%s", n, limit, env.srvLog)
	}
	if n := strings.Count(env.srvLog.String(), "stream limit reached"); n != 1 {
		t.Errorf("want the refusal logged once per session, got %d:\n%s", n, env.srvLog)
	}
	// Free a slot: the next connection gets through. The slot is
	// returned just after the close is logged, so allow a few tries.
	held[0].Close()
	waitLog(env.srvLog, `msg="tunnel: close"`, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := echo(env.clientAddr, []byte("a slot is free again"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection got through after one closed: %v\n%s", err, env.srvLog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	env.stop(t)
	if !strings.Contains(env.srvLog.String(), "refused_streams=2") {
		t.Errorf("session down line does not count the 2 refused streams:\n%s", env.srvLog)
	}
}

// TestTunnelClientListenerFailure (review finding 7): when the client's
// listener fails while a connection is still dialling the uxp session,
// shutdown does not hang, the session that dial produces is closed rather
// than kept, and no connection accepted earlier can dial another one.
func TestTunnelClientListenerFailure(t *testing.T) {
	env := startTunnel(t, netsim.Impairment{})
	for _, honoursCtx := range []bool{true, false} {
		name := map[bool]string{true: "dial honours ctx", false: "dial ignores ctx"}[honoursCtx]
		t.Run(name, func(t *testing.T) {
			cfg := tunnelConfig()
			cfg.ServerPublicKey = env.srvKey
			cfg.Identity.PresharedKey = env.psk
			var calls atomic.Int32
			dialling := make(chan struct{}, 10)
			release := make(chan struct{})
			var releaseOnce sync.Once
			defer releaseOnce.Do(func() { close(release) })
			dialled := make(chan *uxp.StreamConn, 10)
			dial := func(ctx context.Context) (net.Conn, error) {
				calls.Add(1)
				dialling <- struct{}{}
				if honoursCtx {
					select {
					case <-release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				} else {
					<-release
				}
				pc, err := lossyUDP(netsim.Impairment{}, 7)
				if err != nil {
					return nil, err
				}
				c, err := uxp.DialConnOver(context.Background(), pc, env.srvAddr, cfg)
				if err != nil {
					return nil, err
				}
				dialled <- c
				return c, nil
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var log testutil.SyncBuffer
			c := newTunnelClient(ln, dial, newTunnelLogger(&log))
			done := make(chan error, 1)
			go func() { done <- c.serve(context.Background()) }()
			tcp, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer tcp.Close()
			select {
			case <-dialling:
			case <-time.After(10 * time.Second):
				t.Fatal("the connection never started dialling")
			}
			ln.Close() // the listener fails; the context is not cancelled
			if !honoursCtx {
				// Shutdown goes ahead while the dial is stuck ...
				deadline := time.Now().Add(10 * time.Second)
				for {
					c.mu.Lock()
					stopping := c.stopping
					c.mu.Unlock()
					if stopping {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("shutdown waits for a dial in flight")
					}
					time.Sleep(10 * time.Millisecond)
				}
				// ... and when the dial ends, its session is not kept.
				releaseOnce.Do(func() { close(release) })
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("serve returned %v, want the listener's error", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("tunnel client did not shut down:\n%s", &log)
			}
			if !honoursCtx {
				sc := <-dialled
				select {
				case <-sc.Session().Done():
				case <-time.After(10 * time.Second):
					t.Error("the session dialled during shutdown was kept open")
				}
			}
			tcp.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(tcp); err != nil && !strings.Contains(err.Error(), "reset") {
				t.Errorf("the connection was not closed: %v", err)
			}
			// A connection accepted before the failure that only now
			// asks for a session must not dial one.
			before := calls.Load()
			if _, err := c.session(context.Background()); !errors.Is(err, errTunnelStopping) {
				t.Errorf("session after shutdown: got %v, want errTunnelStopping", err)
			}
			if calls.Load() != before {
				t.Error("a session was dialled after shutdown")
			}
		})
	}
}
