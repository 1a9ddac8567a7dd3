package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/testutil"
)

// tunnelLink impairs both directions of the tunnel's UDP path: 1% loss,
// 0.5% duplication, 1% reordering, 2 ms one-way delay.
var tunnelLink = netsim.Impairment{Loss: 0.01, Duplicate: 0.005, Reorder: 0.01, Delay: 2 * time.Millisecond}

// tunnelEnv is a running tunnel: target TCP server <- tunnel server <=
// lossy uxp => tunnel client <- TCP clients dial clientAddr.
type tunnelEnv struct {
	clientAddr string
	client     *tunnelClient
	srvLog     *testutil.SyncBuffer
	cliLog     *testutil.SyncBuffer
	cancel     context.CancelFunc
	done       chan error // serve results, two of them
}

// startTunnel starts a target, a tunnel server and a tunnel client over
// loopback UDP impaired by imp in both directions.
func startTunnel(t *testing.T, imp netsim.Impairment) *tunnelEnv {
	t.Helper()
	target := startTarget(t)
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	lossyUDP := func(seed uint64) net.PacketConn {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadBuffer(4 << 20)
		_ = pc.SetWriteBuffer(4 << 20)
		return netsim.Wrap(pc, imp, seed)
	}
	env := &tunnelEnv{srvLog: &testutil.SyncBuffer{}, cliLog: &testutil.SyncBuffer{}, done: make(chan error, 2)}
	srvCfg := tunnelConfig()
	srvCfg.PrivateKey = kp.Private
	srvPC := lossyUDP(1)
	srv, err := newTunnelServer(srvPC, target, srvCfg, newTunnelLogger(env.srvLog))
	if err != nil {
		t.Fatal(err)
	}
	cliCfg := tunnelConfig()
	cliCfg.ServerPublicKey = kp.Public
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(2)
	env.client = newTunnelClient(ln, func(ctx context.Context) (net.Conn, error) {
		seed++
		return uxp.DialConnOver(ctx, lossyUDP(seed), srvPC.LocalAddr(), cliCfg)
	}, newTunnelLogger(env.cliLog))
	env.clientAddr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	env.cancel = cancel
	go func() { env.done <- srv.serve(ctx) }()
	go func() { env.done <- env.client.serve(ctx) }()
	t.Cleanup(func() { env.stop(t) })
	return env
}

// stop shuts both ends down as SIGINT would and checks they return nil.
func (e *tunnelEnv) stop(t *testing.T) {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	for range 2 {
		select {
		case err := <-e.done:
			if err != nil {
				t.Errorf("serve returned %v after shutdown, want nil", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("tunnel did not shut down")
		}
	}
}

// Target protocol, one request per TCP connection, after which the
// target closes the connection:
//
//	'U', u64 length n, n bytes: the target answers the SHA-256 of the bytes
//	'E', u64 length n, n bytes: the target echoes them
func startTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var hdr [9]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				body := io.LimitReader(c, int64(binary.LittleEndian.Uint64(hdr[1:])))
				switch hdr[0] {
				case 'U':
					h := sha256.New()
					if _, err := io.Copy(h, body); err != nil {
						return
					}
					c.Write(h.Sum(nil))
				case 'E':
					io.Copy(struct{ io.Writer }{c}, body)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// request sends cmd, the length of data and data through the tunnel, and
// returns everything that comes back until the target closes.
func request(addr string, cmd byte, data []byte) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var hdr [9]byte
	hdr[0] = cmd
	binary.LittleEndian.PutUint64(hdr[1:], uint64(len(data)))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(hdr[:])
		if err == nil {
			_, err = c.Write(data)
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	return got, <-werr
}

// upload sends data through the tunnel and returns the SHA-256 the
// target computed.
func upload(addr string, data []byte) ([]byte, error) { return request(addr, 'U', data) }

// echo sends data through the tunnel to the echoing target and checks
// that exactly the same bytes come back.
func echo(addr string, data []byte) error {
	got, err := request(addr, 'E', data)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(data), len(got))
	}
	return nil
}

// fileData is size pseudo-random bytes.
func fileData(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, size+8)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:size]
}

// TestTunnelFile copies a 64 MiB file through the tunnel over a lossy
// link and checks its SHA-256. The full size runs under the race detector
// too (about 20 s on the 2-core CI machine), so CI needs no second pass.
func TestTunnelFile(t *testing.T) {
	const size = 64 << 20
	env := startTunnel(t, tunnelLink)
	data := fileData(1, size)
	want := sha256.Sum256(data)
	start := time.Now()
	got, err := upload(env.clientAddr, data)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if !bytes.Equal(got, want[:]) {
		t.Fatalf("target got SHA-256 %x, want %x", got, want)
	}
	t.Logf("%d MiB through the tunnel in %v (%.1f MiB/s) over 1%% loss each way", size>>20, elapsed.Round(time.Millisecond), float64(size)/(1<<20)/elapsed.Seconds())
	env.stop(t)
	// One log line per connection open and close, with byte counts; the
	// 9-byte request header is part of what was sent.
	wantClose := fmt.Sprintf("sent=%d received=32", size+9)
	if !strings.Contains(env.cliLog.String(), wantClose) {
		t.Errorf("client log has no close line with %q:\n%s", wantClose, env.cliLog)
	}
	if !strings.Contains(env.srvLog.String(), fmt.Sprintf("sent=32 received=%d", size+9)) {
		t.Errorf("server log has no close line with the byte counts:\n%s", env.srvLog)
	}
}

// TestTunnelConcurrent runs 50 TCP connections through the tunnel at
// once, each echoing its own 64 KiB, over the lossy link; every one must
// come back intact, and both ends log 50 opens and 50 closes.
func TestTunnelConcurrent(t *testing.T) {
	const conns = 50
	size := 64 << 10
	if raceEnabled {
		size = 16 << 10
	}
	env := startTunnel(t, tunnelLink)
	errs := make(chan error, conns)
	for i := range conns {
		go func() { errs <- echo(env.clientAddr, fileData(uint64(100+i), size)) }()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	env.stop(t)
	for name, log := range map[string]string{"client": env.cliLog.String(), "server": env.srvLog.String()} {
		if n := strings.Count(log, "msg=\"tunnel: open\""); n != conns {
			t.Errorf("%s logged %d opens, want %d", name, n, conns)
		}
		want := fmt.Sprintf("sent=%d received=%d", size+9, size)
		if name == "server" {
			want = fmt.Sprintf("sent=%d received=%d", size, size+9)
		}
		if n := strings.Count(log, want); n != conns {
			t.Errorf("%s logged %d closes with %q, want %d:\n%s", name, n, want, conns, log)
		}
	}
	if strings.Count(env.cliLog.String(), "uxp session up") != 1 {
		t.Errorf("all connections should share one uxp session:\n%s", env.cliLog)
	}
}

// TestTunnelReconnect: when the uxp session dies, the client notices,
// and the next TCP connection gets a new session.
func TestTunnelReconnect(t *testing.T) {
	env := startTunnel(t, netsim.Impairment{})
	if err := echo(env.clientAddr, []byte("first")); err != nil {
		t.Fatal(err)
	}
	env.client.mu.Lock()
	old := env.client.conn
	env.client.mu.Unlock()
	old.Close() // kill the session under the tunnel
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(env.cliLog.String(), "will reconnect") {
		if time.Now().After(deadline) {
			t.Fatalf("client did not notice the dead session:\n%s", env.cliLog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := echo(env.clientAddr, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(env.cliLog.String(), "uxp session up"); n != 2 {
		t.Errorf("want 2 sessions, got %d:\n%s", n, env.cliLog)
	}
}

// TestTunnelShutdown: cancelling (what SIGINT and SIGTERM do) stops both
// ends promptly even with a connection open, and that connection is
// closed.
func TestTunnelShutdown(t *testing.T) {
	env := startTunnel(t, netsim.Impairment{})
	c, err := net.Dial("tcp", env.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("E\xff\xff\xff\xff\x00\x00\x00\x00")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(env.srvLog.String(), "tunnel: open") {
		if time.Now().After(deadline) {
			t.Fatalf("connection never reached the server:\n%s", env.srvLog)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	env.stop(t)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Errorf("open connection not closed at shutdown: %v", err)
	}
	for _, log := range []string{env.cliLog.String(), env.srvLog.String()} {
		if !strings.Contains(log, "stopped") {
			t.Errorf("no stop line in log:\n%s", log)
		}
	}
}

// TestTunnelKeys checks where keys come from and the errors for missing
// or bad ones.
func TestTunnelKeys(t *testing.T) {
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privFile := filepath.Join(dir, "server.key")
	if err := os.WriteFile(privFile, []byte(kp.Private.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "server.pub")
	if err := os.WriteFile(pubFile, []byte(kp.Public.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := env(nil)

	k, err := loadPrivateKey(privFile, none)
	if err != nil || k != kp.Private {
		t.Errorf("private key from file: %v", err)
	}
	k, err = loadPrivateKey("", env(map[string]string{envTunnelKey: kp.Private.String()}))
	if err != nil || k != kp.Private {
		t.Errorf("private key from %s: %v", envTunnelKey, err)
	}
	if _, err := loadPrivateKey("", none); err == nil || !strings.Contains(err.Error(), envTunnelKey) {
		t.Errorf("missing private key: got %v, want an error naming %s", err, envTunnelKey)
	}
	if _, err := loadPrivateKey(pubFile+".missing", none); err == nil {
		t.Error("missing key file accepted")
	}
	if _, err := loadPrivateKey("", env(map[string]string{envTunnelKey: "not base64"})); err == nil || !strings.Contains(err.Error(), envTunnelKey) {
		t.Errorf("bad private key: got %v, want an error naming %s", err, envTunnelKey)
	}

	for _, tc := range []struct {
		name       string
		flag, file string
		env        map[string]string
	}{
		{name: "flag", flag: kp.Public.String()},
		{name: "file", file: pubFile},
		{name: "env", env: map[string]string{envTunnelServerKey: kp.Public.String()}},
	} {
		p, err := loadPublicKey(tc.flag, tc.file, env(tc.env))
		if err != nil || p != kp.Public {
			t.Errorf("public key from %s: %v", tc.name, err)
		}
	}
	if _, err := loadPublicKey("", "", none); err == nil || !strings.Contains(err.Error(), envTunnelServerKey) {
		t.Errorf("missing public key: got %v", err)
	}
}

// TestTunnelUsage covers the command line of `uxp tunnel`.
func TestTunnelUsage(t *testing.T) {
	t.Setenv(envTunnelKey, "")
	t.Setenv(envTunnelServerKey, "")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no mode", args: []string{"tunnel"}, wantCode: exitUsage, wantStderr: "uxp tunnel server"},
		{name: "bad mode", args: []string{"tunnel", "sideways"}, wantCode: exitUsage, wantStderr: `unknown mode "sideways"`},
		{name: "server without target", args: []string{"tunnel", "server"}, wantCode: exitUsage, wantStderr: "-target is required"},
		{name: "server without key", args: []string{"tunnel", "server", "-target", "127.0.0.1:1"}, wantCode: exitFail, wantStderr: envTunnelKey},
		{name: "client without server", args: []string{"tunnel", "client"}, wantCode: exitUsage, wantStderr: "-server is required"},
		{name: "client without key", args: []string{"tunnel", "client", "-server", "127.0.0.1:1"}, wantCode: exitFail, wantStderr: envTunnelServerKey},
		{name: "client help", args: []string{"tunnel", "client", "-h"}, wantCode: exitOK, wantStderr: "-server-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, tt.wantCode, &stderr)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, &stderr)
			}
		})
	}
}

// TestTunnelCommand runs the real command line: `uxp tunnel server` with
// its key from a file and `uxp tunnel client` with the pinned key from the
// environment, forwards one connection, and stops both with the context
// (as SIGINT does) with exit code 0.
func TestTunnelCommand(t *testing.T) {
	target := startTarget(t)
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "server.key")
	if err := os.WriteFile(keyFile, []byte(kp.Private.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envTunnelServerKey, kp.Public.String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var srvErr, cliErr testutil.SyncBuffer
	codes := make(chan int, 2)
	go func() {
		codes <- run(ctx, []string{"tunnel", "server", "-listen", "127.0.0.1:0", "-target", target, "-key", keyFile}, io.Discard, &srvErr)
	}()
	srvAddr := waitLogAddr(t, &srvErr, "tunnel server listening")
	go func() {
		codes <- run(ctx, []string{"tunnel", "client", "-listen", "127.0.0.1:0", "-server", srvAddr}, io.Discard, &cliErr)
	}()
	cliAddr := waitLogAddr(t, &cliErr, "tunnel client listening")
	if err := echo(cliAddr, []byte("through the real command")); err != nil {
		t.Fatalf("%v\nserver:\n%s\nclient:\n%s", err, &srvErr, &cliErr)
	}
	cancel()
	for range 2 {
		if code := <-codes; code != exitOK {
			t.Errorf("exit code %d\nserver:\n%s\nclient:\n%s", code, &srvErr, &cliErr)
		}
	}
	if !strings.Contains(srvErr.String(), kp.Public.String()) {
		t.Errorf("server did not log its public key:\n%s", &srvErr)
	}
}

// waitLogAddr waits for a log line with msg and returns its addr= value.
func waitLogAddr(t *testing.T, log *testutil.SyncBuffer, msg string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(log.String(), "\n") {
			if !strings.Contains(line, msg) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if a, ok := strings.CutPrefix(f, "addr="); ok {
					return a
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line in:\n%s", msg, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
