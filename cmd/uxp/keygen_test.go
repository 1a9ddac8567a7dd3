package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/uxp-go/uxp"
)

// parseKeygenOutput returns the values of the "name: value" lines.
func parseKeygenOutput(t testing.TB, out string) map[string]string {
	t.Helper()
	kv := make(map[string]string)
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			t.Fatalf("malformed keygen line %q", line)
		}
		kv[k] = v
	}
	return kv
}

// checkPair fails t unless priv and pub parse and pub belongs to priv.
func checkPair(t testing.TB, priv, pub string) {
	t.Helper()
	sk, err := uxp.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := uxp.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := sk.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if derived != pk {
		t.Fatalf("public key %v does not belong to the private key (want %v)", pk, derived)
	}
}

func TestKeygenStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keygen"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, &stderr)
	}
	kv := parseKeygenOutput(t, stdout.String())
	if len(kv) != 2 {
		t.Fatalf("want private and public lines, got %q", stdout.String())
	}
	checkPair(t, kv["private"], kv["public"])

	// A second run must give a different key.
	var again bytes.Buffer
	run(context.Background(), []string{"keygen"}, &again, &stderr)
	if parseKeygenOutput(t, again.String())["private"] == kv["private"] {
		t.Fatal("two keygen runs produced the same private key")
	}
}

func TestKeygenFiles(t *testing.T) {
	dir := t.TempDir()
	privPath := filepath.Join(dir, "server.key")
	pubPath := filepath.Join(dir, "server.pub")
	var stdout, stderr bytes.Buffer
	args := []string{"keygen", "-private-out", privPath, "-public-out", pubPath}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, &stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("keys written to files must not be printed, got %q", &stdout)
	}
	priv, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	checkPair(t, strings.TrimSpace(string(priv)), strings.TrimSpace(string(pub)))
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(privPath)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("private key file mode = %v, want 0600", perm)
		}
	}

	// Overwriting an existing key is refused and leaves it alone.
	stderr.Reset()
	if code := run(context.Background(), args, &stdout, &stderr); code != exitFail {
		t.Fatalf("overwrite: exit code %d, want %d", code, exitFail)
	}
	if !strings.Contains(stderr.String(), "exists") {
		t.Errorf("overwrite: stderr = %q, want it to say the file exists", &stderr)
	}
	if again, _ := os.ReadFile(privPath); !bytes.Equal(again, priv) {
		t.Error("refused overwrite still changed the private key file")
	}
}

func TestKeygenPrivateFileOnly(t *testing.T) {
	privPath := filepath.Join(t.TempDir(), "server.key")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keygen", "-private-out", privPath}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, &stderr)
	}
	kv := parseKeygenOutput(t, stdout.String())
	if _, ok := kv["private"]; ok || len(kv) != 1 {
		t.Fatalf("want only the public line on stdout, got %q", &stdout)
	}
	priv, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	checkPair(t, strings.TrimSpace(string(priv)), kv["public"])
}
