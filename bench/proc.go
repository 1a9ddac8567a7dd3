package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// child is one re-executed bench process. Its stdout is read line by line;
// its stderr goes to ours.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	name  string
}

func startChild(ctx context.Context, wrap []string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := append(append(append([]string{}, wrap...), self), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, lines: make(chan string, 16), name: strings.Join(args, " ")}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20) // RTT arrays are long lines
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c, nil
}

// line returns the next stdout line, failing after timeout or at EOF.
func (c *child) line(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("%s: exited without answering", c.name)
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("%s: no answer within %v", c.name, timeout)
	}
}

func (c *child) send(cmd string) error {
	_, err := io.WriteString(c.in, cmd+"\n")
	return err
}

// finish closes stdin and waits; a child that does not exit in time is
// killed.
func (c *child) finish(timeout time.Duration) {
	c.in.Close()
	done := make(chan struct{})
	go func() {
		_ = c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// server is a running server child.
type server struct {
	*child
	addr, key string
}

// profileDir, when set (the orchestrator's -profile), makes every uxp
// server child, and every uxp client child started with -sys first, write a
// CPU profile there; profileSeq numbers the files.
// Both are set once before any case runs.
var (
	profileDir string
	profileSeq int
)

func startServer(ctx context.Context, wrap []string, sys string, procs int) (*server, error) {
	args := []string{"-role", "server", "-sys", sys, "-procs", fmt.Sprint(procs)}
	if profileDir != "" && isUXP(sys) {
		profileSeq++
		f := filepath.Join(profileDir, fmt.Sprintf("server-%s-%02d.pprof", sys, profileSeq))
		args = append(args, "-cpuprofile", f)
		fmt.Fprintf(os.Stderr, "profile: %s\n", f)
	}
	return awaitServer(ctx, wrap, "server "+sys, args...)
}

// awaitServer starts a server child with args inside wrap and reads its
// "READY addr key" line; name labels the error.
func awaitServer(ctx context.Context, wrap []string, name string, args ...string) (*server, error) {
	c, err := startChild(ctx, wrap, args...)
	if err != nil {
		return nil, err
	}
	l, err := c.line(20 * time.Second)
	if err != nil {
		c.finish(time.Second)
		return nil, err
	}
	f := strings.Fields(l)
	if len(f) != 3 || f[0] != "READY" {
		c.finish(time.Second)
		return nil, fmt.Errorf("%s: unexpected %q", name, l)
	}
	return &server{child: c, addr: f[1], key: f[2]}, nil
}

func (s *server) mark() error {
	if err := s.send("MARK"); err != nil {
		return err
	}
	l, err := s.line(10 * time.Second)
	if err == nil && l != "OK" {
		err = fmt.Errorf("server: MARK answered %q", l)
	}
	return err
}

func (s *server) stats() (serverStats, error) {
	var st serverStats
	if err := s.send("STATS"); err != nil {
		return st, err
	}
	l, err := s.line(60 * time.Second)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(l), &st)
}

func (s *server) quit() {
	_ = s.send("QUIT")
	s.finish(5 * time.Second)
}

// runClient runs a client child to completion and parses its result.
func runClient(ctx context.Context, wrap []string, timeout time.Duration, args ...string) (clientResult, error) {
	var res clientResult
	args = append([]string{"-role", "client"}, args...)
	if profileDir != "" && len(args) > 3 && args[2] == "-sys" && isUXP(args[3]) {
		profileSeq++
		f := filepath.Join(profileDir, fmt.Sprintf("client-%s-%02d.pprof", args[3], profileSeq))
		args = append(args, "-cpuprofile", f)
		fmt.Fprintf(os.Stderr, "profile: %s\n", f)
	}
	c, err := startChild(ctx, wrap, args...)
	if err != nil {
		return res, err
	}
	defer c.finish(2 * time.Second)
	l, err := c.line(timeout)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal([]byte(l), &res); err != nil {
		return res, errors.New("client: bad result line: " + trim(l))
	}
	return res, nil
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
