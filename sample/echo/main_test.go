package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/testutil"
)

// TestEcho runs the server and a client over loopback: every line comes
// back, and cancelling the context (what SIGINT does) stops the server.
func TestEcho(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var srvOut testutil.SyncBuffer
	type up struct {
		addr net.Addr
		pub  uxp.PublicKey
	}
	ready := make(chan up, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"server", "-listen", "127.0.0.1:0"}, nil, &srvOut, &srvOut, func(a net.Addr, p uxp.PublicKey) { ready <- up{a, p} })
	}()
	var u up
	select {
	case u = <-ready:
	case err := <-done:
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	lines := "hello\nworld\n" + strings.Repeat("x", 5000) + "\n"
	err := run(ctx, []string{"client", "-server", u.addr.String(), "-server-key", u.pub.String()}, strings.NewReader(lines), &out, &errOut, nil)
	if err != nil {
		t.Fatalf("client: %v\n%s", err, &errOut)
	}
	if out.String() != lines {
		t.Errorf("client printed %q, want %q", out.String(), lines)
	}

	// A wrong key fails the handshake instead of talking to the server.
	other, _ := uxp.GenerateKey()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	err = run(short, []string{"client", "-server", u.addr.String(), "-server-key", other.Public.String()}, strings.NewReader("x\n"), &out, &errOut, nil)
	if !errors.Is(err, uxp.ErrHandshakeFailed) {
		t.Errorf("client with a wrong server key: got %v, want ErrHandshakeFailed", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("server: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if !strings.Contains(srvOut.String(), "echoed 5013 bytes") {
		t.Errorf("server output:\n%s", &srvOut)
	}
}

func TestEchoUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, nil, &out, &out, nil); err == nil {
		t.Error("no mode accepted")
	}
	if err := run(context.Background(), []string{"client", "-server-key", ""}, strings.NewReader(""), &out, &out, nil); err == nil || !strings.Contains(err.Error(), "server-key") {
		t.Errorf("missing key: %v", err)
	}
}
