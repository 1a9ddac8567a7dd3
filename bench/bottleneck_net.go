package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The bottleneck scenarios run over three network namespaces in a line:
//
//	client ns              router ns                      server ns
//	c0 10.77.1.1 ──veth── r0 10.77.1.2   r1 10.77.2.1 ──veth── s0 10.77.2.2
//	                                     └ tbf 20 Mbit/s, 50 ms queue
//
// The bulk flow goes client → server, so the token bucket sits on the
// router's egress toward the server (r1). The reverse path (ACKs, echo
// replies) has no limit. The kernel has no netem, so the path has no added
// delay: its RTT is the queue's. bottleneck-loss adds an nftables rule on
// the router's forward hook that drops 5% of the packets at random, in
// both directions.
//
// GSO is off on every veth end (gso_max_segs 1) so that TCP and quic-go
// put packets of at most the MTU on the wire, as on a real link: the
// interface counters then count wire packets, not super-packets.
//
// Every run gets its own namespaces, named uxpbn<pid>-<seq><role>, removed
// when the case ends; a run that was killed leaves namespaces whose pid no
// longer exists, and the next run removes them first.

const (
	bnRate    = "20mbit"
	bnBurst   = "32kbit"
	bnLatency = "50ms"
	bnPrefix  = "uxpbn"
	bnServer  = "10.77.2.2"
)

const bnLossRule = `table inet uxpbn {
 chain forward {
  type filter hook forward priority 0; policy accept;
  numgen random mod 100 < 5 drop
 }
}
`

// bottleneckUnavailable says why the bottleneck scenarios cannot run, or "".
func bottleneckUnavailable(o *options) string { return namespacesUnavailable(o, "ip", "tc", "nft") }

// bnPath is one client–router–server line of namespaces.
type bnPath struct{ client, router, server string }

var bnSeq int

// newBottleneck builds the path; loss adds the 5% random drop.
func newBottleneck(ctx context.Context, loss bool) (*bnPath, error) {
	bnSeq++
	base := fmt.Sprintf("%s%d-%d", bnPrefix, os.Getpid(), bnSeq)
	p := &bnPath{client: base + "c", router: base + "r", server: base + "s"}
	c, r, s := p.client, p.router, p.server
	steps := [][]string{
		{"ip", "netns", "add", c},
		{"ip", "netns", "add", r},
		{"ip", "netns", "add", s},
		{"ip", "-n", c, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", r},
		{"ip", "-n", r, "link", "add", "r1", "type", "veth", "peer", "name", "s0", "netns", s},
		{"ip", "-n", c, "link", "set", "c0", "gso_max_segs", "1"},
		{"ip", "-n", r, "link", "set", "r0", "gso_max_segs", "1"},
		{"ip", "-n", r, "link", "set", "r1", "gso_max_segs", "1"},
		{"ip", "-n", s, "link", "set", "s0", "gso_max_segs", "1"},
		{"ip", "-n", c, "addr", "add", "10.77.1.1/24", "dev", "c0"},
		{"ip", "-n", r, "addr", "add", "10.77.1.2/24", "dev", "r0"},
		{"ip", "-n", r, "addr", "add", "10.77.2.1/24", "dev", "r1"},
		{"ip", "-n", s, "addr", "add", bnServer + "/24", "dev", "s0"},
		{"ip", "-n", c, "link", "set", "lo", "up"},
		{"ip", "-n", s, "link", "set", "lo", "up"},
		{"ip", "-n", c, "link", "set", "c0", "up"},
		{"ip", "-n", r, "link", "set", "r0", "up"},
		{"ip", "-n", r, "link", "set", "r1", "up"},
		{"ip", "-n", s, "link", "set", "s0", "up"},
		{"ip", "-n", c, "route", "add", "default", "via", "10.77.1.2"},
		{"ip", "-n", s, "route", "add", "default", "via", "10.77.2.1"},
		{"ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"tc", "-n", r, "qdisc", "add", "dev", "r1", "root", "tbf", "rate", bnRate, "burst", bnBurst, "latency", bnLatency},
	}
	for _, st := range steps {
		if out, err := exec.CommandContext(ctx, st[0], st[1:]...).CombinedOutput(); err != nil {
			p.close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(st, " "), err, strings.TrimSpace(string(out)))
		}
	}
	if loss {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(bnLossRule)
		if out, err := cmd.CombinedOutput(); err != nil {
			p.close()
			return nil, fmt.Errorf("nft: %v: %s", err, out)
		}
	}
	return p, nil
}

// close removes the namespaces; the veths go with them.
func (p *bnPath) close() {
	for _, ns := range []string{p.client, p.router, p.server} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func nsWrap(ns string) []string { return []string{"ip", "netns", "exec", ns} }

// cleanBottleneckLeftovers removes the namespaces of bench runs that no
// longer exist (killed before their deferred cleanup ran).
func cleanBottleneckLeftovers() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], bnPrefix) {
			continue
		}
		rest := strings.TrimPrefix(f[0], bnPrefix)
		pid, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '-'), 0)])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // a run still going
		}
		_ = exec.Command("ip", "netns", "del", f[0]).Run()
	}
}

// linkCounters are one interface's statistics.
type linkCounters struct{ rxBytes, rxPackets, txBytes, txPackets int64 }

func readLink(ns, dev string) (linkCounters, error) {
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		return linkCounters{}, fmt.Errorf("ip -s link %s: %w", dev, err)
	}
	var v []struct {
		Stats struct {
			RX struct{ Bytes, Packets int64 } `json:"rx"`
			TX struct{ Bytes, Packets int64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &v); err != nil || len(v) != 1 {
		return linkCounters{}, fmt.Errorf("ip -s link %s: %q", dev, trim(string(out)))
	}
	s := v[0].Stats
	return linkCounters{s.RX.Bytes, s.RX.Packets, s.TX.Bytes, s.TX.Packets}, nil
}

// tbfCounters are the token bucket's statistics from tc -s qdisc.
type tbfCounters struct{ bytes, packets, drops int64 }

func (p *bnPath) readTBF() (tbfCounters, error) {
	out, err := exec.Command("tc", "-n", p.router, "-s", "-j", "qdisc", "show", "dev", "r1").Output()
	if err != nil {
		return tbfCounters{}, fmt.Errorf("tc -s qdisc: %w", err)
	}
	var v []struct {
		Kind    string `json:"kind"`
		Bytes   int64  `json:"bytes"`
		Packets int64  `json:"packets"`
		Drops   int64  `json:"drops"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return tbfCounters{}, fmt.Errorf("tc -s qdisc: %q", trim(string(out)))
	}
	for _, q := range v {
		if q.Kind == "tbf" {
			return tbfCounters{q.Bytes, q.Packets, q.Drops}, nil
		}
	}
	return tbfCounters{}, fmt.Errorf("no tbf on the router: %q", trim(string(out)))
}

// bnSnapshot is every counter a case reads before and after.
type bnSnapshot struct {
	client, server linkCounters // c0, s0
	tbf            tbfCounters
}

func (p *bnPath) snapshot() (bnSnapshot, error) {
	var s bnSnapshot
	var err error
	if s.client, err = readLink(p.client, "c0"); err != nil {
		return s, err
	}
	if s.server, err = readLink(p.server, "s0"); err != nil {
		return s, err
	}
	s.tbf, err = p.readTBF()
	return s, err
}

// startServerAt starts a server child listening on addr inside wrap.
func startServerAt(ctx context.Context, wrap []string, sys, addr string) (*server, error) {
	return awaitServer(ctx, wrap, "server "+sys, "-role", "server", "-sys", sys, "-addr", addr)
}
