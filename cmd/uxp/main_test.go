package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/uxp-go/uxp"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantStderr: "Usage:"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: exitUsage, wantStderr: `unknown command "frobnicate"`},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantStdout: "Commands:"},
		{name: "demo help flag", args: []string{"demo", "-h"}, wantCode: exitOK, wantStderr: "-clients"},
		{name: "demo bad flag", args: []string{"demo", "-nope"}, wantCode: exitUsage, wantStderr: "flag provided but not defined"},
		{name: "demo stray argument", args: []string{"demo", "extra"}, wantCode: exitUsage, wantStderr: `unexpected argument "extra"`},
		{name: "demo invalid option", args: []string{"demo", "-clients", "0"}, wantCode: exitFail, wantStderr: "-clients 0"},
		{name: "demo invalid loss", args: []string{"demo", "-loss", "1.5"}, wantCode: exitFail, wantStderr: "Loss"},
		{name: "demo unknown cipher", args: []string{"demo", "-cipher", "rot13"}, wantCode: exitFail, wantStderr: "unknown cipher"},
		{name: "version", args: []string{"version"}, wantCode: exitOK, wantStdout: "uxp " + uxp.Version + " (wire protocol 1) go"},
		{name: "version stray argument", args: []string{"version", "x"}, wantCode: exitUsage, wantStderr: "Usage: uxp version"},
		{name: "keygen bad flag", args: []string{"keygen", "-x"}, wantCode: exitUsage, wantStderr: "Usage: uxp keygen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.wantStdout, &stdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, &stderr)
			}
		})
	}
}
