package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBenchLocal runs every `uxp bench` scenario briefly against the
// in-process server and checks each reports a measurement.
func TestBenchLocal(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bench", "-d", "300ms", "-rate", "100"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"bulk:", "MB/s", "rr:", "p99.9", "open:", "answered", "cc: bw ", " state ", "min RTT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchBadFlags rejects impossible settings as usage errors.
func TestBenchBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr: the reason, not just any failure
	}{
		{[]string{"bench", "-size", "3"}, "-size must be at least 16"},
		{[]string{"bench", "-rate", "0"}, "-rate and -d positive"},
		{[]string{"bench", "-addr", "127.0.0.1:1", "-key", "not-a-key"}, "parse public key"},
		{[]string{"bench", "-cc", "reno"}, `-cc "reno"`},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code == exitOK {
			t.Errorf("%v: exit 0, want failure", tc.args)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errb.String(), tc.want)
		}
	}
}
