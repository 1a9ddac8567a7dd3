package main

import (
	"context"
	"errors"
	"fmt"
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

// collector is a client handler that hands echoes to the test.
type collector struct {
	uxp.NopHandler
	got chan string
}

func (c *collector) OnNewDataComing(_ *uxp.Conn, data []byte) { c.got <- string(data) }

func TestServerEchoes(t *testing.T) {
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "server.key")
	if err := os.WriteFile(keyFile, []byte(kp.Private.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantPub *uxp.PublicKey // nil: a generated key
	}{
		{name: "generated key"},
		{name: "key file", args: []string{"-key-file", keyFile}, wantPub: &kp.Public},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testutil.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type listenInfo struct {
				addr net.Addr
				pub  uxp.PublicKey
			}
			up := make(chan listenInfo, 1)
			done := make(chan error, 1)
			args := append([]string{"-listen", "127.0.0.1:0", "-stats-interval", "50ms"}, tt.args...)
			go func() {
				done <- run(ctx, args, &logs, log, func(a net.Addr, p uxp.PublicKey) { up <- listenInfo{a, p} })
			}()
			var info listenInfo
			select {
			case info = <-up:
			case err := <-done:
				t.Fatalf("run: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("server did not start")
			}
			if tt.wantPub != nil && info.pub != *tt.wantPub {
				t.Fatalf("server public key %v, want %v from the key file", info.pub, *tt.wantPub)
			}

			// A client without a player name is rejected with a reason.
			var rej *uxp.RejectError
			if _, err := uxp.Dial(ctx, info.addr.String(), nil, &uxp.Config{ServerPublicKey: info.pub}); !errors.As(err, &rej) || rej.Code != rejectNoName {
				t.Fatalf("Dial without a name: %v, want a *uxp.RejectError with code %d", err, rejectNoName)
			}

			h := &collector{got: make(chan string, 10)}
			cl, err := uxp.Dial(ctx, info.addr.String(), h, &uxp.Config{ServerPublicKey: info.pub, ConnectData: []byte("tester")})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(cl.Conn().AcceptData()); got != "welcome, tester" {
				t.Fatalf("accept data %q", got)
			}
			for i := range 3 {
				msg := fmt.Sprintf("message %d", i)
				if _, err := cl.Conn().Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				select {
				case got := <-h.got:
					if got != msg {
						t.Fatalf("echo %q, want %q", got, msg)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no echo of %q", msg)
				}
			}
			if err := cl.Close(); err != nil {
				t.Fatal(err)
			}

			cancel() // what SIGINT does
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("server did not stop")
			}
			out := logs.String()
			for _, want := range []string{"msg=listening", "msg=OnNewConnComing", "msg=OnReady", "msg=OnClosed", "msg=OnConnClosed", "msg=stats", "msg=\"shutting down\""} {
				if !strings.Contains(out, want) {
					t.Errorf("logs lack %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestServerErrors(t *testing.T) {
	dir := t.TempDir()
	badKey := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(badKey, []byte("AAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "missing key file", args: []string{"-key-file", filepath.Join(dir, "nope")}, want: "no such file"},
		{name: "bad key file", args: []string{"-key-file", badKey}, want: "bad.key"},
		{name: "bad listen address", args: []string{"-listen", "not an address"}, want: "not an address"},
		{name: "stray argument", args: []string{"extra"}, want: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testutil.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			err := run(context.Background(), tt.args, &logs, log, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
