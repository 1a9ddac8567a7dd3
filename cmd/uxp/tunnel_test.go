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
	srvAddr    net.Addr      // the tunnel server's UDP address
	srvKey     uxp.PublicKey // the tunnel server's public key
	psk        [32]byte      // the pre-shared key both ends hold
	srvLog     *testutil.SyncBuffer
	cliLog     *testutil.SyncBuffer
	cancel     context.CancelFunc
	done       chan error // serve results, two of them
}

// tunnelOptions shape startTunnelWith's tunnel.
type tunnelOptions struct {
	imp        netsim.Impairment // on both directions of the UDP path
	maxStreams int               // the server's; zero means defaultMaxStreams
	// serverCfg and clientCfg, when set, change the ends' configs after
	// the defaults (the pinned key and a shared pre-shared key) are in.
	serverCfg, clientCfg func(*uxp.Config)
}

// startTunnel starts a target, a tunnel server and a tunnel client over
// loopback UDP impaired by imp in both directions. Both ends hold the
// same pre-shared key, as the server requires.
func startTunnel(t *testing.T, imp netsim.Impairment) *tunnelEnv {
	t.Helper()
	return startTunnelWith(t, tunnelOptions{imp: imp})
}

// lossyUDP is a loopback UDP socket impaired by imp. It may be called
// from any goroutine.
func lossyUDP(imp netsim.Impairment, seed uint64) (net.PacketConn, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = pc.SetReadBuffer(4 << 20)
	_ = pc.SetWriteBuffer(4 << 20)
	return netsim.Wrap(pc, imp, seed), nil
}

// newPSK is a fresh pre-shared key, made as the README says.
func newPSK(t testing.TB) uxp.PrivateKey {
	t.Helper()
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp.Private
}

func startTunnelWith(t *testing.T, o tunnelOptions) *tunnelEnv {
	t.Helper()
	target := startTarget(t)
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env := &tunnelEnv{srvKey: kp.Public, psk: newPSK(t), srvLog: &testutil.SyncBuffer{}, cliLog: &testutil.SyncBuffer{}, done: make(chan error, 2)}
	if o.maxStreams == 0 {
		o.maxStreams = defaultMaxStreams
	}
	srvCfg := tunnelConfig()
	srvCfg.PrivateKey = kp.Private
	srvCfg.Identity.PresharedKey = env.psk
	if o.serverCfg != nil {
		o.serverCfg(srvCfg)
	}
	srvPC, err := lossyUDP(o.imp, 1)
	if err != nil {
		t.Fatal(err)
	}
	env.srvAddr = srvPC.LocalAddr()
	srv, err := newTunnelServer(srvPC, srvCfg, tunnelServerOptions{target: target, maxStreams: o.maxStreams}, newTunnelLogger(env.srvLog))
	if err != nil {
		t.Fatal(err)
	}
	cliCfg := tunnelConfig()
	cliCfg.ServerPublicKey = kp.Public
	cliCfg.Identity.PresharedKey = env.psk
	if o.clientCfg != nil {
		o.clientCfg(cliCfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(2)
	env.client = newTunnelClient(ln, func(ctx context.Context) (net.Conn, error) {
		seed++
		pc, err := lossyUDP(o.imp, seed)
		if err != nil {
			return nil, err
		}
		return uxp.DialConnOver(ctx, pc, env.srvAddr, cliCfg)
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
