package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/testutil"
)

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

// TestTunnelAuthKeys checks where the pre-shared key, the client's key
// and the allowed client keys come from, and the errors for bad ones.
func TestTunnelAuthKeys(t *testing.T) {
	psk := newPSK(t)
	ck, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pskFile := writeFile(t, dir, "tunnel.psk", psk.String()+"\n")
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := env(nil)

	for _, tc := range []struct {
		name, file string
		env        map[string]string
	}{
		{name: "file", file: pskFile},
		{name: "env", env: map[string]string{envTunnelPSK: psk.String()}},
		{name: "file before env", file: pskFile, env: map[string]string{envTunnelPSK: newPSK(t).String()}},
	} {
		got, ok, err := loadPSK(tc.file, env(tc.env))
		if err != nil || !ok || got != psk {
			t.Errorf("psk from %s: ok=%v err=%v", tc.name, ok, err)
		}
	}
	if _, ok, err := loadPSK("", none); ok || err != nil {
		t.Errorf("no psk: got ok=%v err=%v, want none and no error", ok, err)
	}
	for _, tc := range []struct{ name, value, wantErr string }{
		{"not base64", "not base64!", "not base64"},
		{"short", "AAAA", "has 3 bytes, want 32"},
		{"all zero", uxp.PrivateKey{}.String(), "all zero"},
	} {
		if _, _, err := loadPSK("", env(map[string]string{envTunnelPSK: tc.value})); err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), envTunnelPSK) {
			t.Errorf("psk %s: got %v, want an error naming %s with %q", tc.name, err, envTunnelPSK, tc.wantErr)
		}
	}

	k, ok, err := loadClientKey("", env(map[string]string{envTunnelClientKey: ck.Private.String()}))
	if err != nil || !ok || k != ck.Private {
		t.Errorf("client key from %s: ok=%v err=%v", envTunnelClientKey, ok, err)
	}
	k, ok, err = loadClientKey(writeFile(t, dir, "client.key", ck.Private.String()+"\n"), none)
	if err != nil || !ok || k != ck.Private {
		t.Errorf("client key from file: ok=%v err=%v", ok, err)
	}
	if _, ok, err := loadClientKey("", none); ok || err != nil {
		t.Errorf("no client key: got ok=%v err=%v", ok, err)
	}
	if _, _, err := loadClientKey(filepath.Join(dir, "missing"), none); err == nil || !strings.Contains(err.Error(), "-client-key") {
		t.Errorf("missing client key file: got %v", err)
	}

	keys, err := loadAllowedKeys(writeFile(t, dir, "allowed", "# team\n\n"+ck.Public.String()+"  laptop\n  "+other.Public.String()+"\n"))
	if err != nil || len(keys) != 2 || keys[0] != ck.Public || keys[1] != other.Public {
		t.Errorf("allowed keys: got %v, %v", keys, err)
	}
	if _, err := loadAllowedKeys(writeFile(t, dir, "bad", ck.Public.String()+"\n# next\nAAAA\n")); err == nil || !strings.Contains(err.Error(), "bad:3") {
		t.Errorf("bad allowed key: got %v, want an error naming line 3", err)
	}
	if _, err := loadAllowedKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing allowed keys file accepted")
	}
}

// TestTunnelUsage covers the command line of `uxp tunnel`, including the
// server's refusal to start without client authentication.
func TestTunnelUsage(t *testing.T) {
	for _, k := range []string{envTunnelKey, envTunnelServerKey, envTunnelPSK, envTunnelClientKey} {
		t.Setenv(k, "")
	}
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "server.key", kp.Private.String()+"\n")
	emptyFile := writeFile(t, dir, "empty", "")
	commentsOnly := writeFile(t, dir, "allowed", "# nobody yet\n\n")
	server := []string{"tunnel", "server", "-listen", "127.0.0.1:0", "-target", "127.0.0.1:1", "-key", keyFile}
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
		{name: "server without client auth", args: server, wantCode: exitFail, wantStderr: "no client authentication configured"},
		{name: "server with empty psk file", args: append(server, "-psk-file", emptyFile), wantCode: exitFail, wantStderr: "file is empty"},
		{name: "server with bad psk file", args: append(server, "-psk-file", commentsOnly), wantCode: exitFail, wantStderr: "pre-shared key is not base64"},
		{name: "server with no allowed keys", args: append(server, "-allow-client-keys", commentsOnly), wantCode: exitFail, wantStderr: "no keys in the file"},
		{name: "server with zero max streams", args: append(server, "-insecure-anonymous", "-max-streams", "0"), wantCode: exitUsage, wantStderr: "-max-streams must be at least 1"},
		{name: "server help", args: []string{"tunnel", "server", "-h"}, wantCode: exitOK, wantStderr: "-insecure-anonymous"},
		{name: "client without server", args: []string{"tunnel", "client"}, wantCode: exitUsage, wantStderr: "-server is required"},
		{name: "client without key", args: []string{"tunnel", "client", "-server", "127.0.0.1:1"}, wantCode: exitFail, wantStderr: envTunnelServerKey},
		{name: "client with bad client key", args: []string{"tunnel", "client", "-server", "127.0.0.1:1", "-server-key", kp.Public.String(), "-client-key", emptyFile}, wantCode: exitFail, wantStderr: "-client-key"},
		{name: "client help", args: []string{"tunnel", "client", "-h"}, wantCode: exitOK, wantStderr: "-psk-file"},
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

// writeFile writes content to a new file name in dir, private to the
// user, and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTunnelCommand runs the real command line, with each way of
// authenticating clients: `uxp tunnel server` with its key from a file,
// `uxp tunnel client` with the pinned key from the environment; one
// connection is forwarded, and the context stops both (as SIGINT does)
// with exit code 0.
func TestTunnelCommand(t *testing.T) {
	target := startTarget(t)
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "server.key", kp.Private.String()+"\n")
	pskFile := writeFile(t, dir, "tunnel.psk", newPSK(t).String()+"\n")
	clientKeyFile := writeFile(t, dir, "client.key", ck.Private.String()+"\n")
	other, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	allowFile := writeFile(t, dir, "allowed", "# tunnel clients\n"+other.Public.String()+" someone else\n\n"+ck.Public.String()+" this test\n")
	tests := []struct {
		name       string
		serverArgs []string
		clientArgs []string
		clientEnv  map[string]string
		wantLog    string // in the server's log
	}{
		{name: "psk", serverArgs: []string{"-psk-file", pskFile}, clientEnv: map[string]string{envTunnelPSK: mustRead(t, pskFile)}, wantLog: "psk=true"},
		{name: "allowed client keys", serverArgs: []string{"-allow-client-keys", allowFile}, clientArgs: []string{"-client-key", clientKeyFile}, wantLog: ck.Public.String()},
		{name: "psk and client key", serverArgs: []string{"-psk-file", pskFile, "-allow-client-keys", allowFile},
			clientArgs: []string{"-psk-file", pskFile}, clientEnv: map[string]string{envTunnelClientKey: ck.Private.String()}, wantLog: "allowed_client_keys=2"},
		{name: "insecure anonymous", serverArgs: []string{"-insecure-anonymous"}, wantLog: "INSECURE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{envTunnelKey, envTunnelPSK, envTunnelClientKey} {
				t.Setenv(k, tt.clientEnv[k])
			}
			t.Setenv(envTunnelServerKey, kp.Public.String())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var srvErr, cliErr testutil.SyncBuffer
			codes := make(chan int, 2)
			srvArgs := append([]string{"tunnel", "server", "-listen", "127.0.0.1:0", "-target", target, "-key", keyFile}, tt.serverArgs...)
			go func() { codes <- run(ctx, srvArgs, io.Discard, &srvErr) }()
			srvAddr := waitLogAddr(t, &srvErr, "tunnel server listening")
			go func() {
				args := append([]string{"tunnel", "client", "-listen", "127.0.0.1:0", "-server", srvAddr}, tt.clientArgs...)
				codes <- run(ctx, args, io.Discard, &cliErr)
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
			if !strings.Contains(srvErr.String(), tt.wantLog) {
				t.Errorf("server log has no %q:\n%s", tt.wantLog, &srvErr)
			}
		})
	}
}

// mustRead returns the contents of a file.
func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
