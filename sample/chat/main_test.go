package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/testutil"
)

type chatClient struct {
	in   *io.PipeWriter
	out  *testutil.SyncBuffer
	done chan error
}

func startClient(t *testing.T, ctx context.Context, addr net.Addr, pub uxp.PublicKey, nick string) *chatClient {
	t.Helper()
	r, w := io.Pipe()
	c := &chatClient{in: w, out: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	go func() {
		c.done <- run(ctx, []string{"client", "-server", addr.String(), "-server-key", pub.String(), "-nick", nick}, r, c.out, c.out, nil)
	}()
	return c
}

func (c *chatClient) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until the client has printed want.
func (c *chatClient) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("client never printed %q; got:\n%s", want, c.out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChatRooms: three clients; alice and bob share the lobby, carol moves
// to another room. A line is broadcast to its room only, and the server
// shuts down cleanly on cancel (SIGINT).
func TestChatRooms(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var srvOut testutil.SyncBuffer
	type up struct {
		addr net.Addr
		pub  uxp.PublicKey
	}
	ready := make(chan up, 1)
	srvDone := make(chan error, 1)
	go func() {
		srvDone <- run(ctx, []string{"server", "-listen", "127.0.0.1:0"}, nil, &srvOut, &srvOut, func(a net.Addr, p uxp.PublicKey) { ready <- up{a, p} })
	}()
	u := <-ready

	alice := startClient(t, ctx, u.addr, u.pub, "alice")
	alice.waitFor(t, "is now alice")
	// A second alice is refused in the handshake, with the reason.
	if err := <-startClient(t, ctx, u.addr, u.pub, "alice").done; err == nil || !strings.Contains(err.Error(), "nick alice is taken") {
		t.Fatalf("second alice: %v, want a rejection", err)
	}
	bob := startClient(t, ctx, u.addr, u.pub, "bob")
	bob.waitFor(t, "is now bob")
	carol := startClient(t, ctx, u.addr, u.pub, "carol")
	carol.waitFor(t, "is now carol")
	carol.say(t, "/join garden")
	carol.waitFor(t, "* carol joined garden")
	alice.waitFor(t, "* carol left for garden")

	alice.say(t, "hello lobby")
	bob.waitFor(t, "[lobby] alice: hello lobby")
	alice.waitFor(t, "[lobby] alice: hello lobby")
	carol.say(t, "hello garden")
	carol.waitFor(t, "[garden] carol: hello garden")
	bob.say(t, "bye")
	alice.waitFor(t, "[lobby] bob: bye")
	if strings.Contains(carol.out.String(), "hello lobby") || strings.Contains(alice.out.String(), "hello garden") {
		t.Errorf("a line crossed rooms:\ncarol:\n%s\nalice:\n%s", carol.out, alice.out)
	}

	// bob's input ends: his client exits and the others see him leave.
	bob.in.Close()
	if err := <-bob.done; err != nil {
		t.Errorf("bob: %v", err)
	}
	alice.waitFor(t, "* bob left")

	cancel()
	for _, c := range []*chatClient{alice, carol} {
		if err := <-c.done; err != nil {
			t.Errorf("client: %v", err)
		}
	}
	if err := <-srvDone; err != nil {
		t.Errorf("server: %v", err)
	}
}
