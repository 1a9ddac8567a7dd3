package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The loss scenario runs client and server inside a private network
// namespace whose loopback drops 5% of the packets it delivers, chosen by
// nftables' random number generator on the input hook. Every packet passes
// that hook once, so each direction sees 5% independent random loss. The
// namespace has no other traffic, so the loopback's tx_bytes counter is
// exactly the bytes the case put on the wire (IP and transport headers
// included), retransmissions and parity included.

const lossRule = `table inet uxpbench {
 chain input {
  type filter hook input priority 0; policy accept;
  numgen random mod 1000 < 50 drop
 }
}
`

// netnsUnavailable says why the loss scenario cannot run, or "".
func netnsUnavailable(o *options) string { return namespacesUnavailable(o, "ip", "nft") }

// namespacesUnavailable says why a scenario that builds network namespaces
// with tools cannot run here, or "".
func namespacesUnavailable(o *options, tools ...string) string {
	if o.noNetns {
		return "disabled by -no-netns"
	}
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not installed (apt-get install -y iproute2 nftables)"
		}
	}
	return ""
}

type netns struct{ name string }

func newNetns(ctx context.Context) (*netns, error) {
	ns := &netns{name: fmt.Sprintf("uxpbench-%d", os.Getpid())}
	_ = exec.CommandContext(ctx, "ip", "netns", "del", ns.name).Run() // a leftover from a killed run
	steps := [][]string{
		{"ip", "netns", "add", ns.name},
		{"ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			ns.close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(lossRule)
	if out, err := cmd.CombinedOutput(); err != nil {
		ns.close()
		return nil, fmt.Errorf("nft: %v: %s", err, out)
	}
	return ns, nil
}

func (ns *netns) wrap() []string { return []string{"ip", "netns", "exec", ns.name} }

func (ns *netns) txBytes() (int64, error) {
	out, err := exec.Command("ip", "netns", "exec", ns.name, "cat", "/sys/class/net/lo/statistics/tx_bytes").Output()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}

func (ns *netns) close() { _ = exec.Command("ip", "netns", "del", ns.name).Run() }

// lossCase runs open-loop 1 KiB request/response at 200/s under 5% loss
// each way.
func lossCase(ctx context.Context, sys string, d time.Duration) (map[string]float64, error) {
	res, wire, err := lossyOpenLoop(ctx, sys, 200, 1024, d, 3*time.Second)
	if err != nil {
		return nil, err
	}
	if len(res.RTTNs) == 0 {
		return nil, fmt.Errorf("no replies")
	}
	s := sortedNs(res.RTTNs)
	return map[string]float64{
		"p50_ms":        pct(s, 50) / 1e6,
		"p99_ms":        pct(s, 99) / 1e6,
		"max_ms":        s[len(s)-1] / 1e6,
		"bytes_per_req": float64(wire) / float64(max(res.Sent, 1)),
		"unanswered":    float64(res.Lost),
	}, nil
}

// lossyOpenLoop runs sys's server in a namespace with 5% loss each way and
// an open-loop client sending size-byte requests at rate a second for d
// (waiting grace for the last answers); it returns the client's result
// and the bytes the namespace put on the wire meanwhile.
func lossyOpenLoop(ctx context.Context, sys string, rate, size int, d, grace time.Duration) (clientResult, int64, error) {
	ns, err := newNetns(ctx)
	if err != nil {
		return clientResult{}, 0, err
	}
	defer ns.close()
	srv, err := startServer(ctx, ns.wrap(), sys, 0)
	if err != nil {
		return clientResult{}, 0, err
	}
	defer srv.quit()
	tx0, err := ns.txBytes()
	if err != nil {
		return clientResult{}, 0, err
	}
	args := []string{"-sys", sys, "-scen", "open", "-rate", fmt.Sprint(rate), "-size", fmt.Sprint(size),
		"-addr", srv.addr, "-key", srv.key, "-dur", d.String(), "-grace", grace.String()}
	res, err := runClient(ctx, ns.wrap(), d+60*time.Second, args...)
	if err != nil {
		return clientResult{}, 0, err
	}
	tx1, err := ns.txBytes()
	if err != nil {
		return clientResult{}, 0, err
	}
	return res, tx1 - tx0, nil
}
