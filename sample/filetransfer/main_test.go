package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/testutil"
)

// TestFileTransfer sends a 3 MiB file and an empty one; the receiver
// stores exact copies, both sides show progress, and a second send of the
// same name is refused without touching the stored file.
func TestFileTransfer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inbox, src := t.TempDir(), t.TempDir()
	var rcvOut testutil.SyncBuffer
	type up struct {
		addr net.Addr
		pub  uxp.PublicKey
	}
	ready := make(chan up, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"receive", "-listen", "127.0.0.1:0", "-dir", inbox}, &rcvOut, &rcvOut, func(a net.Addr, p uxp.PublicKey) { ready <- up{a, p} })
	}()
	var u up
	select {
	case u = <-ready:
	case err := <-done:
		t.Fatal(err)
	}

	data := make([]byte, 3<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	files := map[string][]byte{"photo.bin": data, "empty.txt": nil}
	for name, content := range files {
		path := filepath.Join(src, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		var out testutil.SyncBuffer
		if err := run(ctx, []string{"send", "-server", u.addr.String(), "-server-key", u.pub.String(), path}, &out, &out, nil); err != nil {
			t.Fatalf("send %s: %v\n%s", name, err, &out)
		}
		got, err := os.ReadFile(filepath.Join(inbox, name))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s: stored copy differs (%v)", name, err)
		}
		if !strings.Contains(out.String(), "receiver verified SHA-256") || (len(content) > 0 && !strings.Contains(out.String(), "(100%)")) {
			t.Errorf("sender output lacks progress or verification:\n%s", &out)
		}
	}
	if !strings.Contains(rcvOut.String(), "/3145728 bytes (50%)") {
		t.Errorf("receiver shows no progress:\n%s", &rcvOut)
	}

	// Same name again: refused, and the stored file is untouched.
	other := filepath.Join(src, "photo.bin")
	os.WriteFile(other, []byte("different"), 0o644)
	var out testutil.SyncBuffer
	err := run(ctx, []string{"send", "-server", u.addr.String(), "-server-key", u.pub.String(), other}, &out, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("resend: got %v, want a refusal naming the existing file", err)
	}
	if got, _ := os.ReadFile(filepath.Join(inbox, "photo.bin")); !bytes.Equal(got, data) {
		t.Error("refused transfer changed the stored file")
	}
	entries, _ := os.ReadDir(inbox)
	if len(entries) != 2 {
		t.Errorf("inbox holds %d entries, want 2 (no temporary files left)", len(entries))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("receiver: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not stop")
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a.txt": true, "": false, ".": false, "..": false, "../x": false, "a/b": false, `a\b`: false, "a\x00b": false,
	} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
