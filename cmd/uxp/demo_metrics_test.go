package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uxp-go/uxp"
	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/metrics"
)

// startMetricsDemo runs a small demo with -metrics on a free loopback
// port, holding its sessions open, and returns the metrics base URL. The
// demo stops when the test ends.
func startMetricsDemo(t *testing.T, hold time.Duration) string {
	t.Helper()
	o := smallDemo()
	o.metrics = "127.0.0.1:0"
	o.hold = hold
	addrs := make(chan net.Addr, 1)
	o.onMetrics = func(a net.Addr) { addrs <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var stdout, stderr bytes.Buffer
	go func() {
		defer close(done)
		if _, err := runDemo(ctx, o, &stdout, &stderr); err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case a := <-addrs:
		return "http://" + a.String()
	case <-done:
		t.Fatalf("demo ended before serving metrics:\n%s", &stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not start its metrics server")
	}
	return ""
}

func TestDemoMetricsEndpoint(t *testing.T) {
	base := startMetricsDemo(t, 30*time.Second)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "uxp_sessions ") {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
}

const chromiumPath = "/usr/bin/chromium"

// chromium runs headless Chromium with args and the flags that keep it
// off the network and out of the user's profile.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,800"}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, &stderr)
	}
	return out
}

// TestDebugPageInChromium loads the debug page of a running demo in
// headless Chromium: the rendered DOM must hold the session table with
// live numbers, and the screenshot must be a real picture. Set
// UXP_DEBUG_SCREENSHOT to a path to keep the screenshot (that is how
// docs/debug-page.png is made).
func TestDebugPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("headless Chromium not installed (%s missing; apt-get install -y chromium)", chromiumPath)
	}
	if testing.Short() {
		t.Skip("starts Chromium twice; skipped with -short")
	}
	base := startMetricsDemo(t, 60*time.Second)
	url := base + "/debug/uxp"
	// Let the demo's traffic run and the heartbeats measure RTTs.
	// Wait until every session shows what checkSessionTable requires: one
	// session reaching it says nothing of the others, which started later.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "?format=json")
		if err == nil {
			var page metrics.DebugPage
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err == nil && liveSessions(page) == smallDemo().clients {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("demo sessions never showed traffic and RTTs")
		}
		time.Sleep(100 * time.Millisecond)
	}

	dom := string(chromium(t, "--dump-dom", url))
	checkSessionTable(t, dom, smallDemo().clients)

	shot := filepath.Join(t.TempDir(), "debug.png")
	chromium(t, "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() < 10<<10 {
		t.Fatalf("screenshot is only %d bytes", st.Size())
	}
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Fatalf("screenshot is %v, want 1280x800", b)
	}
	colors := map[uint32]bool{}
	for y := 0; y < 800; y += 4 {
		for x := 0; x < 1280; x += 4 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colors) < 8 {
		t.Fatalf("screenshot has only %d colours: blank page?", len(colors))
	}
	if keep := os.Getenv("UXP_DEBUG_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// liveSessions counts the sessions of page with an RTT and at least 50
// messages each way.
func liveSessions(page metrics.DebugPage) int {
	n := 0
	for _, s := range page.Sessions {
		if s.RTTMs > 0 && s.MessagesSent >= 50 && s.MessagesReceived >= 50 && s.BytesSent > 0 && s.BytesReceived > 0 {
			n++
		}
	}
	return n
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr><td>(\d+)</td>(.*?)</tr>`)
	cellRE = regexp.MustCompile(`<td[^>]*>([^<]*)</td>`)
)

// checkSessionTable checks that the rendered page lists want sessions, each
// with live numbers: an RTT, messages both ways and bytes.
func checkSessionTable(t *testing.T, dom string, want int) {
	t.Helper()
	if !strings.Contains(dom, `<table id="sessions">`) {
		t.Fatalf("no session table in the DOM:\n%s", dom)
	}
	rows := rowRE.FindAllStringSubmatch(dom, -1)
	if len(rows) != want {
		t.Fatalf("%d session rows, want %d:\n%s", len(rows), want, dom)
	}
	for _, r := range rows {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(r[2], -1) {
			cells = append(cells, c[1])
		}
		// remote, cipher, RTT, RTT var, loss in, loss out, queue, msgs in,
		// msgs out, bytes in, bytes out, ...
		if len(cells) != 18 {
			t.Fatalf("row %s has %d cells: %q", r[1], len(cells), cells)
		}
		num := func(i int) float64 {
			c := strings.TrimRight(cells[i], "kMG%") // si and percent suffixes
			v, err := strconv.ParseFloat(c, 64)
			if err != nil {
				t.Fatalf("row %s cell %d: %v", r[1], i, err)
			}
			return v
		}
		// The demo negotiates: AES-256-GCM on CPUs with AES instructions,
		// ChaCha20-Poly1305 elsewhere.
		if want := negotiatedCipher().String(); !strings.EqualFold(cells[1], want) {
			t.Errorf("row %s: cipher %q", r[1], cells[1])
		}
		if rtt := num(2); rtt <= 0 {
			t.Errorf("row %s: RTT %v, want a live measurement", r[1], rtt)
		}
		if num(7) < 50 || num(8) < 50 || num(9) <= 0 || num(10) <= 0 {
			t.Errorf("row %s: counters not live: %q", r[1], cells)
		}
	}
}

// negotiatedCipher is what two default ends on this machine choose.
func negotiatedCipher() uxp.Cipher {
	if ucrypto.HasAESHardware() {
		return uxp.AES256GCM
	}
	return uxp.ChaCha20Poly1305
}
