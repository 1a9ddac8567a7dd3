package main

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallDemo returns options for a demo that finishes in about a second.
func smallDemo() demoOptions {
	o := defaultDemoOptions()
	o.clients = 4
	o.messages = 50
	o.rate = 200
	o.delay = 5 * time.Millisecond
	o.jitter = 2 * time.Millisecond
	o.timeout = 8 * time.Second
	return o
}

func TestDemoPasses(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*demoOptions)
	}{
		{name: "defaults scaled down", modify: func(*demoOptions) {}},
		{name: "salsa20 fixed size fragmented", modify: func(o *demoOptions) { o.cipher = "salsa20"; o.size = 3000 }},
		{name: "unpaced small window", modify: func(o *demoOptions) { o.rate = 0; o.window = 4; o.size = 100 }},
		{name: "clean link", modify: func(o *demoOptions) { o.loss, o.dup, o.reorder, o.delay, o.jitter = 0, 0, 0, 0, 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			o := smallDemo()
			tt.modify(&o)
			var stdout, stderr bytes.Buffer
			ok, err := runDemo(context.Background(), o, &stdout, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Fatalf("demo failed:\n%s\nprogress:\n%s", &stdout, &stderr)
			}
			checkSummary(t, stdout.String(), o)
		})
	}
}

// checkSummary fails t unless out is a complete, passing summary of o.
func checkSummary(t testing.TB, out string, o demoOptions) {
	t.Helper()
	total := o.clients * o.messages
	for _, re := range []string{
		`(?m)^uxp demo summary$`,
		`(?m)^clients +\d+ \(\d+ connected, \d+ complete\)$`,
		`(?m)^messages +sent ` + strconv.Itoa(total) + `, received ` + strconv.Itoa(total) + ` of ` + strconv.Itoa(total) + ` `,
		`(?m)^rtt +p50 \S+ +p99 \S+ +max \S+ +\(` + strconv.Itoa(total) + ` samples\)$`,
		`(?m)^handshake +p50 \S+ +max \S+$`,
		`(?m)^retransmissions +\d+ \(clients \d+, server \d+\)$`,
		`(?m)^congestion +clients' median at the end: bw \S+( \S+)? pacing .* cwnd .* state \S+.* min RTT \S+ smoothed RTT \S+$`,
		`(?m)^drops +\d+ \(clients \d+, server \d+\)$`,
		`(?m)^  replay +\d+$`,
		`(?m)^  malformed +0$`,
		`(?m)^  auth_failed +0$`,
		`(?m)^impairment +packets sent \d+, dropped \d+, duplicated \d+`,
		`(?m)^result +PASS`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("summary does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "failures") {
		t.Errorf("passing summary lists failures:\n%s", out)
	}
}

// checkNoLeaks registers a cleanup that fails t if the test left more
// goroutines running than it started with. Goroutines take a moment to
// exit after being joined, so the check retries for a while.
func checkNoLeaks(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines left running (had %d before):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestDemoFails(t *testing.T) {
	tests := []struct {
		name      string
		modify    func(*demoOptions)
		interrupt time.Duration // cancel the parent context after this; 0 means never
		want      []string
	}{
		{
			name:   "link down times out",
			modify: func(o *demoOptions) { o.loss = 1; o.timeout = time.Second },
			// The handshakes share the overall deadline, so whether the
			// summary says "timed out" or lists the failed handshakes
			// first is a race; both are failures.
			want: []string{"0 connected, 0 complete", "FAIL", "client 0: handshake: uxp: handshake failed"},
		},
		{
			name:      "interrupted",
			modify:    func(o *demoOptions) { o.rate = 20; o.messages = 1000 },
			interrupt: 500 * time.Millisecond,
			want:      []string{"FAIL (interrupted)", "incomplete:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			o := smallDemo()
			tt.modify(&o)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.interrupt > 0 {
				time.AfterFunc(tt.interrupt, cancel)
			}
			var stdout, stderr bytes.Buffer
			ok, err := runDemo(ctx, o, &stdout, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				t.Fatalf("demo passed, want a failure:\n%s", &stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("summary does not contain %q:\n%s", w, &stdout)
				}
			}
		})
	}
}

func TestRunDemoExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"demo", "-clients", "2", "-messages", "20", "-rate", "0", "-delay", "1ms", "-timeout", "8s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "result") {
		t.Fatalf("no summary on stdout:\n%s", &stdout)
	}
}
