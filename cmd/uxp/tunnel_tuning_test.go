package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/testutil"
)

// TestTunnelTuning checks what each profile and tuning flag sets in the
// uxp and smux configurations, and the errors for bad values.
func TestTunnelTuning(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, c *uxp.Config, tune *tunnelTuning)
		wantErr string
	}{
		{name: "fast is the default", check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			want := uxp.KCPConfig{SendWindow: 1024, RecvWindow: 1024}
			if c.KCP != want {
				t.Errorf("KCP = %+v, want %+v (the fast profile: zero fields are the game defaults)", c.KCP, want)
			}
		}},
		{name: "normal", args: []string{"-mode", "normal"}, check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			want := uxp.KCPConfig{DisableNoDelay: true, Interval: 40 * time.Millisecond, FastResend: 2, CongestionControl: true, SendWindow: 1024, RecvWindow: 1024}
			if c.KCP != want {
				t.Errorf("KCP = %+v, want %+v", c.KCP, want)
			}
		}},
		{name: "manual", args: []string{"-mode", "manual", "-nodelay=false", "-interval", "25", "-resend", "0", "-nc=false"}, check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			want := uxp.KCPConfig{DisableNoDelay: true, Interval: 25 * time.Millisecond, FastResend: -1, CongestionControl: true, SendWindow: 1024, RecvWindow: 1024}
			if c.KCP != want {
				t.Errorf("KCP = %+v, want %+v", c.KCP, want)
			}
		}},
		{name: "manual defaults are fast", args: []string{"-mode", "manual"}, check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			want := uxp.KCPConfig{Interval: 10 * time.Millisecond, FastResend: 2, SendWindow: 1024, RecvWindow: 1024}
			if c.KCP != want {
				t.Errorf("KCP = %+v, want %+v", c.KCP, want)
			}
		}},
		{name: "sizes and buffers", args: []string{"-mtu", "1200", "-sndwnd", "300", "-rcvwnd", "400", "-sockbuf", "65536", "-smuxbuf", "2097152", "-streambuf", "131072"},
			check: func(t *testing.T, c *uxp.Config, tune *tunnelTuning) {
				if c.KCP.MTU != 1200 || c.KCP.SendWindow != 300 || c.KCP.RecvWindow != 400 || c.SocketBufferBytes != 65536 {
					t.Errorf("got MTU %d, windows %d/%d, socket buffer %d", c.KCP.MTU, c.KCP.SendWindow, c.KCP.RecvWindow, c.SocketBufferBytes)
				}
				if s := tune.smux(); s.MaxReceiveBuffer != 2097152 || s.MaxStreamBuffer != 131072 || s.Version != 2 {
					t.Errorf("smux config %+v", s)
				}
			}},
		{name: "fec and cipher", args: []string{"-fec", "8/2", "-cipher", "salsa20"}, check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			if c.FEC != (uxp.FECConfig{DataShards: 8, ParityShards: 2, MaxParity: 2}) || c.Cipher != uxp.Salsa20Poly1305 {
				t.Errorf("FEC %+v, cipher %v", c.FEC, c.Cipher)
			}
		}},
		{name: "adaptive fec", args: []string{"-fec", "adaptive"}, check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			if !c.FEC.Adaptive || c.FEC.DataShards != 10 {
				t.Errorf("FEC %+v", c.FEC)
			}
		}},
		{name: "keepalive", args: []string{"-keepalive", "5"}, check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			if c.HeartbeatInterval != 5*time.Second || c.IdleTimeout != 15*time.Second {
				t.Errorf("heartbeat %v, idle timeout %v; want 5s and 15s", c.HeartbeatInterval, c.IdleTimeout)
			}
		}},
		{name: "default keepalive", check: func(t *testing.T, c *uxp.Config, _ *tunnelTuning) {
			if c.HeartbeatInterval != 3*time.Second || c.IdleTimeout != 10*time.Second {
				t.Errorf("heartbeat %v, idle timeout %v; want 3s and 10s", c.HeartbeatInterval, c.IdleTimeout)
			}
		}},
		{name: "unknown mode", args: []string{"-mode", "fast3"}, wantErr: `-mode "fast3"`},
		{name: "manual flag without manual mode", args: []string{"-interval", "20"}, wantErr: "-interval is read only with -mode manual"},
		{name: "manual flag in normal mode", args: []string{"-mode", "normal", "-nc=false"}, wantErr: "-nc is read only with -mode manual"},
		{name: "interval out of range", args: []string{"-mode", "manual", "-interval", "5"}, wantErr: "KCP.Interval"},
		{name: "mtu out of range", args: []string{"-mtu", "9000"}, wantErr: "KCP.MTU"},
		{name: "bad fec", args: []string{"-fec", "lots"}, wantErr: "-fec"},
		{name: "bad cipher", args: []string{"-cipher", "rot13"}, wantErr: "-cipher"},
		{name: "zero keepalive", args: []string{"-keepalive", "0"}, wantErr: "-keepalive"},
		{name: "zero sockbuf", args: []string{"-sockbuf", "0"}, wantErr: "-sockbuf"},
		{name: "stream buffer above session buffer", args: []string{"-smuxbuf", "65536", "-streambuf", "131072"}, wantErr: "-smuxbuf/-streambuf"},
		{name: "negative stats interval", args: []string{"-statsinterval", "-1"}, wantErr: "-statsinterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var tune tunnelTuning
			tuningFlags(fs, &tune)
			set, err := parseTunnelFlags(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := tune.config(set)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg, &tune)
		})
	}
}

// TestTunnelConfigFile: -c reads flag values from a JSON object with the
// flags' names; a flag on the command line overrides the file; unknown
// names and values of the wrong kind are errors.
func TestTunnelConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", `{"mode": "manual", "interval": 30, "nc": false, "fec": "10/3", "mtu": 1300, "cipher": "salsa20"}`)
	parse := func(args ...string) (*tunnelTuning, *uxp.Config, error) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var tune tunnelTuning
		tuningFlags(fs, &tune)
		set, err := parseTunnelFlags(fs, args)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := tune.config(set)
		return &tune, cfg, err
	}
	tune, cfg, err := parse("-c", good)
	if err != nil {
		t.Fatal(err)
	}
	if tune.mode != "manual" || cfg.KCP.Interval != 30*time.Millisecond || !cfg.KCP.CongestionControl || cfg.FEC.DataShards != 10 || cfg.KCP.MTU != 1300 || cfg.Cipher != uxp.Salsa20Poly1305 {
		t.Errorf("from the file: mode %s, KCP %+v, FEC %+v, cipher %v", tune.mode, cfg.KCP, cfg.FEC, cfg.Cipher)
	}
	_, cfg, err = parse("-mtu", "1250", "-c", good, "-interval", "20")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KCP.MTU != 1250 || cfg.KCP.Interval != 20*time.Millisecond || cfg.FEC.DataShards != 10 {
		t.Errorf("flags before and after -c override the file: MTU %d, interval %v; the rest still comes from it: FEC %+v", cfg.KCP.MTU, cfg.KCP.Interval, cfg.FEC)
	}
	for _, tc := range []struct{ name, content, wantErr string }{
		{"unknown name", `{"mode": "fast", "crypt": "aes"}`, `unknown setting "crypt"`},
		{"nested c", `{"c": "other.json"}`, `unknown setting "c"`},
		{"wrong kind", `{"mtu": [1400]}`, "want a string, number or boolean"},
		{"bad number", `{"mtu": 1400.5}`, `"mtu"`},
		{"not json", `mode = fast`, "invalid character"},
		{"two objects", `{} {}`, "data after the JSON object"},
		{"manual flag in the file without manual mode", `{"resend": 1}`, "-resend is read only with -mode manual"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse("-c", writeFile(t, dir, "bad.json", tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
	if _, _, err := parse("-c", dir+"/missing.json"); err == nil {
		t.Error("a missing config file is accepted")
	}
}

// TestTunnelProfiles runs the real command line end to end with each
// profile and tuning flag set on both ends: a 1 MiB upload arrives intact,
// both ends log their periodic stats, the server serves Prometheus
// metrics, and shutting down with a connection still open (as SIGTERM
// does) exits 0 and logs no closed-pipe or closed-connection errors. The
// last case reads everything but one flag from -c files.
func TestTunnelProfiles(t *testing.T) {
	kp, err := uxp.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "server.key", kp.Private.String()+"\n")
	pskFile := writeFile(t, dir, "tunnel.psk", newPSK(t).String()+"\n")
	tests := []struct {
		name       string
		args       []string // on both ends
		serverFile string   // -c file of the server, with everything
		wantLog    []string // in both ends' startup lines
		wantCli    string   // in the client's stats line
	}{
		{name: "fast", wantLog: []string{"mode=fast", "fec=off", "cipher=auto"}},
		{name: "normal", args: []string{"-mode", "normal"}, wantLog: []string{"mode=normal"}},
		{name: "manual", args: []string{"-mode", "manual", "-nodelay=false", "-interval", "20", "-resend", "0", "-nc=false"}, wantLog: []string{"mode=manual"}},
		{name: "fec salsa20 small buffers", args: []string{"-fec", "10/3", "-cipher", "salsa20", "-mtu", "1200", "-sndwnd", "256", "-rcvwnd", "256",
			"-sockbuf", "1048576", "-smuxbuf", "1048576", "-streambuf", "262144", "-keepalive", "2"},
			wantLog: []string{"fec=10/3", "cipher=salsa20-poly1305", "mtu=1200", "sndwnd=256"}, wantCli: "fec_parity=3"},
		{name: "adaptive fec", args: []string{"-fec", "adaptive"}, wantLog: []string{"fec=adaptive"}},
		{name: "config file", serverFile: `{"listen": "127.0.0.1:0", "target": "TARGET", "key": "KEY", "psk-file": "PSK",
			"mode": "normal", "fec": "10/3", "sndwnd": 512, "rcvwnd": 512, "mtu": 1300, "statsinterval": 1, "metrics": "127.0.0.1:0"}`,
			args: []string{"-mtu", "1280"}, wantLog: []string{"mode=normal", "fec=10/3", "sndwnd=512", "mtu=1280"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := startTarget(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var srvErr, cliErr testutil.SyncBuffer
			codes := make(chan int, 2)
			srvArgs := []string{"tunnel", "server", "-listen", "127.0.0.1:0", "-target", target, "-key", keyFile, "-psk-file", pskFile,
				"-statsinterval", "1", "-metrics", "127.0.0.1:0"}
			if tt.serverFile != "" {
				r := strings.NewReplacer("TARGET", target, "KEY", keyFile, "PSK", pskFile)
				srvArgs = []string{"tunnel", "server", "-c", writeFile(t, t.TempDir(), "server.json", r.Replace(tt.serverFile))}
			}
			srvArgs = append(srvArgs, tt.args...)
			go func() { codes <- run(ctx, srvArgs, io.Discard, &srvErr) }()
			srvAddr := waitLogAddr(t, &srvErr, "tunnel server listening")
			cliArgs := []string{"tunnel", "client", "-listen", "127.0.0.1:0", "-server", srvAddr, "-server-key", kp.Public.String(), "-psk-file", pskFile, "-statsinterval", "1",
				"-metrics", "127.0.0.1:0"}
			if tt.serverFile != "" {
				cliArgs = []string{"tunnel", "client", "-c", writeFile(t, t.TempDir(), "client.json",
					`{"listen": "127.0.0.1:0", "server": "`+srvAddr+`", "server-key": "`+kp.Public.String()+`", "psk-file": "`+pskFile+`",
					"mode": "normal", "fec": "10/3", "sndwnd": 512, "rcvwnd": 512, "mtu": 1300, "statsinterval": 1, "metrics": "127.0.0.1:0"}`)}
			}
			cliArgs = append(cliArgs, tt.args...)
			go func() { codes <- run(ctx, cliArgs, io.Discard, &cliErr) }()
			cliAddr := waitLogAddr(t, &cliErr, "tunnel client listening")
			logs := func() string { return "server:\n" + srvErr.String() + "\nclient:\n" + cliErr.String() }

			data := fileData(7, 1<<20)
			sum, err := upload(cliAddr, data)
			want := sha256.Sum256(data)
			if err != nil || !bytes.Equal(sum, want[:]) {
				t.Fatalf("upload: %v (hash %x, want %x)\n%s", err, sum, want, logs())
			}
			for _, s := range tt.wantLog {
				if !strings.Contains(firstLine(srvErr.String(), "tunnel server listening"), s) ||
					!strings.Contains(firstLine(cliErr.String(), "tunnel client listening"), s) {
					t.Errorf("startup lines lack %q\n%s", s, logs())
				}
			}
			// A connection left open through shutdown: the target waits
			// for 100 bytes and gets 10.
			open, err := net.Dial("tcp", cliAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer open.Close()
			var hdr [9 + 10]byte
			hdr[0] = 'E'
			binary.LittleEndian.PutUint64(hdr[1:], 100)
			if _, err := open.Write(hdr[:]); err != nil {
				t.Fatal(err)
			}
			waitLog(t, &srvErr, "tunnel: open", 2)
			waitLog(t, &srvErr, "tunnel: stats", 1)
			cliStats := waitLog(t, &cliErr, "tunnel: stats\" sessions=1", 1)
			if tt.wantCli != "" && !strings.Contains(cliStats, tt.wantCli) {
				t.Errorf("client stats line %q lacks %q", cliStats, tt.wantCli)
			}
			url := waitLog(t, &srvErr, "tunnel: metrics", 1)
			_, url, _ = strings.Cut(url, "url=")
			body := httpGet(t, strings.Fields(url)[0])
			if !strings.Contains(body, "uxp_sessions 1") || !strings.Contains(body, "uxp_bytes_received_total") {
				t.Errorf("metrics lack the session:\n%s", body)
			}
			url = waitLog(t, &cliErr, "tunnel: metrics", 1)
			_, url, _ = strings.Cut(url, "url=")
			body = httpGet(t, strings.Fields(url)[0])
			if !strings.Contains(body, "uxp_client_bytes_total{direction=\"sent\"}") || strings.Contains(body, "uxp_client_bytes_total{direction=\"sent\"} 0\n") {
				t.Errorf("client metrics lack the session's traffic:\n%s", body)
			}

			cancel()
			for range 2 {
				if code := <-codes; code != exitOK {
					t.Errorf("exit code %d\n%s", code, logs())
				}
			}
			for _, noise := range []string{"closed pipe", "use of closed", "level=ERROR"} {
				if strings.Contains(logs(), noise) {
					t.Errorf("shutdown logged %q\n%s", noise, logs())
				}
			}
		})
	}
}

// firstLine is the first line of log containing msg, or "".
func firstLine(log, msg string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, msg) {
			return line
		}
	}
	return ""
}

// waitLog waits until log has n lines with msg and returns the last.
func waitLog(t *testing.T, log *testutil.SyncBuffer, msg string, n int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var found []string
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, msg) {
				found = append(found, line)
			}
		}
		if len(found) >= n {
			return found[len(found)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d %q lines in:\n%s", n, msg, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpGet returns the body at url.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
