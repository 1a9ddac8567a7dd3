package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/testutil"
)

type echoServer struct{ uxp.NopServerHandler }
type echoConn struct{ uxp.NopHandler }

func (echoServer) OnNewConnComing(c *uxp.Conn)            { c.SetHandler(echoConn{}) }
func (echoConn) OnNewDataComing(c *uxp.Conn, data []byte) { c.Write(data) }

// startEchoServer runs a minimal uxp echo server on a loopback port for the
// duration of the test.
func startEchoServer(t testing.TB) (addr string, pub uxp.PublicKey) {
	t.Helper()
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := uxp.NewServer(pc, echoServer{}, &uxp.Config{PrivateKey: kp.Private})
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String(), kp.Public
}

func TestClientAgainstEchoServer(t *testing.T) {
	addr, pub := startEchoServer(t)
	keyFile := filepath.Join(t.TempDir(), "server.pub")
	if err := os.WriteFile(keyFile, []byte(pub.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
	}{
		{name: "key flag", args: []string{"-server-key", pub.String()}, getenv: noEnv},
		{name: "key file", args: []string{"-server-key-file", keyFile}, getenv: noEnv},
		{name: "key env", getenv: func(k string) string {
			if k == keyEnv {
				return pub.String()
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testutil.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"-server", addr, "-count", "3", "-interval", "20ms"}, tt.args...)
			if err := run(ctx, args, tt.getenv, &logs, log); err != nil {
				t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
			}
			out := logs.String()
			if n := strings.Count(out, "msg=echo "); n != 3 {
				t.Errorf("got %d echoes, want 3:\n%s", n, out)
			}
			for _, cb := range []string{"msg=OnReady", "msg=done", "msg=OnClosed"} {
				if !strings.Contains(out, cb) {
					t.Errorf("logs lack %q:\n%s", cb, out)
				}
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	addr, _ := startEchoServer(t)
	other, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no key", args: nil, want: "no server key"},
		{name: "bad key", args: []string{"-server-key", "not base64!"}, want: "-server-key"},
		{name: "missing key file", args: []string{"-server-key-file", filepath.Join(t.TempDir(), "nope")}, want: "no such file"},
		{name: "bad count", args: []string{"-count", "0"}, want: "-count"},
		{name: "stray argument", args: []string{"extra"}, want: "unexpected argument"},
		// The wrong server key looks like a silent server: the handshake
		// times out (here at the context's deadline).
		{name: "wrong key", args: []string{"-server-key", other.Public.String()}, want: "handshake failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testutil.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			defer cancel()
			args := append([]string{"-server", addr, "-interval", "10ms"}, tt.args...)
			err := run(ctx, args, func(string) string { return "" }, &logs, log)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestClientInterrupted(t *testing.T) {
	addr, pub := startEchoServer(t)
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	// A signal ends the run early, cleanly: no error.
	args := []string{"-server", addr, "-server-key", pub.String(), "-count", "1000", "-interval", "50ms"}
	if err := run(ctx, args, func(string) string { return "" }, &logs, log); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(logs.String(), "msg=interrupted") {
		t.Errorf("logs lack the interruption:\n%s", logs.String())
	}
}
