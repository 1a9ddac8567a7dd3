package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// The bottleneck scenarios (issue 14): one bulk flow through a 20 Mbit/s
// token bucket with a 50 ms queue (bottleneck_net.go builds the path),
// alone with a request/response probe beside it, against one TCP bulk
// flow, and with 5% random loss added.

// bottleneckSystems run in all three scenarios; -quick runs the short list.
var (
	bottleneckSystems      = []string{sysUXP, sysUXPAdaptive, sysKCP, sysQUIC, sysTCP}
	bottleneckQuickSystems = []string{sysUXP, sysTCP}
)

// The probe: a second connection of the same system doing 1 KiB
// request/response at 20/s for the bulk flow's duration.
const (
	probeRate = 20
	probeSize = 1024
)

func init() {
	extraScenarios = append(extraScenarios, "bottleneck", "bottleneck-vs-tcp", "bottleneck-loss")
	cols := [][2]string{
		{"goodput_MBps", "goodput MB/s"},
		{"wire_per_byte", "wire bytes per delivered byte"},
		{"wire_ip_per_byte", "IP bytes per delivered byte"},
		{"queue_drop_pct", "dropped at the queue %"},
		{"probe_p50_ms", "probe p50 ms"},
		{"probe_p99_ms", "probe p99 ms"},
		{"ack_per_data", "reverse packets per data packet"},
		{"tbf_sent_MB", "tbf sent MB"},
		{"pkt_bytes", "client wire bytes per packet"},
		{"retrans_pct", "bulk retransmitted % (uxp)"},
		{"retrans_rto_pct", "of which on timeout %"},
		{"retrans_fast_pct", "of which on later ACKs %"},
		{"dup_pct", "duplicates through the bottleneck % (uxp)"},
	}
	scenarioColumns["bottleneck"] = cols
	scenarioColumns["bottleneck-loss"] = cols
	scenarioColumns["bottleneck-vs-tcp"] = [][2]string{
		{"share_pct", "its share %"},
		{"goodput_MBps", "its goodput MB/s"},
		{"tcp_MBps", "TCP flow's goodput MB/s"},
		{"queue_drop_pct", "dropped at the queue % (both flows)"},
		{"tbf_sent_MB", "tbf sent MB"},
	}
	scenarioTitles["bottleneck"] = "6. Bottleneck: one bulk flow client → server through a 20 Mbit/s tbf with a 50 ms queue " +
		"(client, router and server namespaces joined by veths), plus a 1 KiB request/response probe at 20/s on a second connection. " +
		"Wire bytes: the client veth's tx bytes (Ethernet frames) ÷ the payload delivered forward (bulk + probe requests); " +
		"IP bytes: the same less the 14-byte Ethernet header of every frame (the IP layer, where issue 14's TCP and quic-go baseline of 1.04 was taken); dropped: the tbf's drops ÷ the packets offered to it; " +
		"reverse packets per data packet: the server veth's tx ÷ rx packets (ACKs, plus the probe's 20 replies/s)"
	scenarioTitles["bottleneck-vs-tcp"] = "7. Bottleneck shared with one TCP bulk flow (both client → server, no probe): each flow's goodput; share = its ÷ the sum"
	scenarioTitles["bottleneck-loss"] = "8. Bottleneck plus 5% random drop in both directions (nftables numgen on the router's forward hook), same columns as 6"
	extraTargets = append(extraTargets, bottleneckTargets)
}

// runBottleneck runs the three scenarios that the filter wants.
func runBottleneck(ctx context.Context, o *options, r *report, reps int, want func(string) bool,
	pick func([]string) []string, logf func(string, ...any)) {
	scens := []string{"bottleneck", "bottleneck-vs-tcp", "bottleneck-loss"}
	var run []string
	for _, s := range scens {
		if want(s) {
			run = append(run, s)
		}
	}
	if len(run) == 0 {
		return
	}
	if why := bottleneckUnavailable(o); why != "" {
		for _, s := range run {
			logf("%s: skipped: %s", s, why)
			r.Skipped = append(r.Skipped, s+": "+why)
		}
		return
	}
	cleanBottleneckLeftovers()
	d, systems := 10*time.Second, bottleneckSystems
	if o.quick {
		d, systems, reps = 2*time.Second, bottleneckQuickSystems, 1
	}
	systems = pick(systems)
	for _, s := range run {
		runInterleaved(ctx, r, s, systems, reps, logf, func(sys string) (map[string]float64, error) {
			switch s {
			case "bottleneck-vs-tcp":
				return bottleneckVsTCPCase(ctx, sys, d)
			default:
				return bottleneckCase(ctx, sys, d, s == "bottleneck-loss")
			}
		})
	}
}

// bulkArgs are a bulk client's arguments for a server.
func bulkArgs(sys string, srv *server, d time.Duration) []string {
	return []string{"-sys", sys, "-scen", "bulk", "-addr", srv.addr, "-key", srv.key, "-dur", d.String()}
}

// clientOut is one client child's outcome.
type clientOut struct {
	res clientResult
	err error
}

// runClients runs the clients concurrently inside wrap and waits for all.
func runClients(ctx context.Context, wrap []string, timeout time.Duration, argv ...[]string) []clientOut {
	out := make([]clientOut, len(argv))
	var wg sync.WaitGroup
	for i, a := range argv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].res, out[i].err = runClient(ctx, wrap, timeout, a...)
		}()
	}
	wg.Wait()
	return out
}

// ethHeader is the Ethernet header a veth counts in each frame's tx bytes.
/* Specification constant */
const ethHeader = 14

// bottleneckCase runs one bulk flow and the probe through the path.
func bottleneckCase(ctx context.Context, sys string, d time.Duration, loss bool) (map[string]float64, error) {
	path, err := newBottleneck(ctx, loss)
	if err != nil {
		return nil, err
	}
	defer path.close()
	srv, err := startServerAt(ctx, nsWrap(path.server), sys, bnServer+":0")
	if err != nil {
		return nil, err
	}
	defer srv.quit()
	before, err := path.snapshot()
	if err != nil {
		return nil, err
	}
	probe := []string{"-sys", sys, "-scen", "open", "-rate", fmt.Sprint(probeRate), "-size", fmt.Sprint(probeSize),
		"-addr", srv.addr, "-key", srv.key, "-dur", d.String(), "-grace", "3s"}
	outs := runClients(ctx, nsWrap(path.client), d+90*time.Second, bulkArgs(sys, srv, d), probe)
	for i, o := range outs {
		if o.err != nil {
			return nil, fmt.Errorf("%s client: %w", []string{"bulk", "probe"}[i], o.err)
		}
	}
	after, err := path.snapshot()
	if err != nil {
		return nil, err
	}
	st, err := srv.stats()
	if err != nil {
		return nil, err
	}
	if st.SinkBytes == 0 || st.SinkSpanNs == 0 {
		return nil, fmt.Errorf("server received nothing")
	}
	pr := outs[1].res
	if len(pr.RTTNs) == 0 {
		return nil, fmt.Errorf("probe: no replies")
	}
	tbf := tbfCounters{after.tbf.bytes - before.tbf.bytes, after.tbf.packets - before.tbf.packets, after.tbf.drops - before.tbf.drops}
	if tbf.bytes < st.SinkBytes {
		// Everything the server received must have left through the
		// token bucket; if not, the case did not run through it.
		return nil, fmt.Errorf("tbf sent %d bytes, less than the %d delivered: not through the bottleneck", tbf.bytes, st.SinkBytes)
	}
	delivered := st.SinkBytes + int64(pr.Sent)*probeSize
	txBytes := after.client.txBytes - before.client.txBytes
	txPackets := after.client.txPackets - before.client.txPackets
	s := sortedNs(pr.RTTNs)
	m := map[string]float64{
		"goodput_MBps":  float64(st.SinkBytes) / 1e6 / (float64(st.SinkSpanNs) / 1e9),
		"wire_per_byte": float64(txBytes) / float64(delivered),
		// The IP layer: a veth counts each frame with its Ethernet
		// header (14 bytes; no preamble or FCS on a veth).
		"wire_ip_per_byte": float64(txBytes-ethHeader*txPackets) / float64(delivered),
		"queue_drop_pct":   100 * float64(tbf.drops) / float64(max(tbf.packets+tbf.drops, 1)),
		"probe_p50_ms":     pct(s, 50) / 1e6,
		"probe_p99_ms":     pct(s, 99) / 1e6,
		"probe_lost":       float64(pr.Sent - len(pr.RTTNs)),
		"ack_per_data": float64(after.server.txPackets-before.server.txPackets) /
			float64(max(after.server.rxPackets-before.server.rxPackets, 1)),
		"tbf_sent_MB": float64(tbf.bytes) / 1e6,
		"tbf_drops":   float64(tbf.drops),
		// Where the wire bytes go: the mean frame on the client's veth
		// (Ethernet, IP and UDP headers included), and for uxp the share
		// of the bulk session's packets that were retransmissions.
		"pkt_bytes": float64(txBytes) / float64(max(txPackets, 1)),
	}
	if st.RepeatSegs > 0 {
		// Data segments the server's KCP already had, against the
		// packets the token bucket sent: the bottleneck's share spent on
		// copies (the random drop is before the bucket, so a needed
		// retransmission crosses it once).
		m["dup_pct"] = 100 * float64(st.RepeatSegs) / float64(max(tbf.packets, 1))
	}
	if b := outs[0].res; b.PacketsOut > 0 {
		m["retrans_pct"] = 100 * float64(b.Retrans) / float64(b.PacketsOut)
		m["retrans_rto_pct"] = 100 * float64(b.RetransRTO) / float64(b.PacketsOut)
		m["retrans_fast_pct"] = 100 * float64(b.RetransFast+b.RetransEarly) / float64(b.PacketsOut)
	}
	return m, nil
}

// bottleneckVsTCPCase runs sys's bulk flow and one TCP bulk flow together.
func bottleneckVsTCPCase(ctx context.Context, sys string, d time.Duration) (map[string]float64, error) {
	path, err := newBottleneck(ctx, false)
	if err != nil {
		return nil, err
	}
	defer path.close()
	srv, err := startServerAt(ctx, nsWrap(path.server), sys, bnServer+":0")
	if err != nil {
		return nil, err
	}
	defer srv.quit()
	tcp, err := startServerAt(ctx, nsWrap(path.server), sysTCP, bnServer+":0")
	if err != nil {
		return nil, err
	}
	defer tcp.quit()
	before, err := path.snapshot()
	if err != nil {
		return nil, err
	}
	outs := runClients(ctx, nsWrap(path.client), d+90*time.Second, bulkArgs(sys, srv, d), bulkArgs(sysTCP, tcp, d))
	for i, o := range outs {
		if o.err != nil {
			return nil, fmt.Errorf("%s bulk client: %w", []string{sys, "competing tcp"}[i], o.err)
		}
	}
	after, err := path.snapshot()
	if err != nil {
		return nil, err
	}
	var g [2]float64
	var sink int64
	for i, s := range []*server{srv, tcp} {
		st, err := s.stats()
		if err != nil {
			return nil, err
		}
		if st.SinkBytes == 0 || st.SinkSpanNs == 0 {
			return nil, fmt.Errorf("flow %d: server received nothing", i)
		}
		g[i] = float64(st.SinkBytes) / 1e6 / (float64(st.SinkSpanNs) / 1e9)
		sink += st.SinkBytes
	}
	tbf := tbfCounters{after.tbf.bytes - before.tbf.bytes, after.tbf.packets - before.tbf.packets, after.tbf.drops - before.tbf.drops}
	if tbf.bytes < sink {
		return nil, fmt.Errorf("tbf sent %d bytes, less than the %d delivered: not through the bottleneck", tbf.bytes, sink)
	}
	return map[string]float64{
		"share_pct":      100 * g[0] / (g[0] + g[1]),
		"goodput_MBps":   g[0],
		"tcp_MBps":       g[1],
		"queue_drop_pct": 100 * float64(tbf.drops) / float64(max(tbf.packets+tbf.drops, 1)),
		"tbf_sent_MB":    float64(tbf.bytes) / 1e6,
	}, nil
}

// bottleneckTargets are issue 14's bench targets.
func bottleneckTargets(r *report) []target {
	m := func(scen, sys, metric string) float64 { return r.med(scen, sys, "", metric) }
	ratio := func(scen, a, b, metric string) float64 { return m(scen, a, metric) / m(scen, b, metric) }
	const b, l = "bottleneck", "bottleneck-loss"
	t := []target{
		// Wire bytes at the IP layer: the layer of the baseline
		// (TCP and quic-go 1.04; on this bench 1.040 and 1.045 at the IP
		// layer, 1.050 and 1.055 with the veth's 14-byte Ethernet header
		// per frame, which the wire_per_byte column still shows). With
		// Ethernet headers the bound would leave a 1,472-byte datagram
		// about 26 bytes for the AEAD tag, uxp's header and a KCP record
		// (README, Performance).
		{Name: "bottleneck, FEC off: IP bytes ≤ 1.05× goodput", Ratio: m(b, sysUXP, "wire_ip_per_byte"), Bound: 1.05, AtMost: true},
		{Name: "bottleneck, FEC adaptive: IP bytes ≤ 1.25× goodput", Ratio: m(b, sysUXPAdaptive, "wire_ip_per_byte"), Bound: 1.25, AtMost: true},
		{Name: "bottleneck, FEC off: queue drops ≤ 2% of packets (%)", Ratio: m(b, sysUXP, "queue_drop_pct"), Bound: 2, AtMost: true},
		{Name: "bottleneck, FEC adaptive: queue drops ≤ 2% of packets (%)", Ratio: m(b, sysUXPAdaptive, "queue_drop_pct"), Bound: 2, AtMost: true},
		{Name: "bottleneck: goodput ≥ 0.95× TCP", Ratio: ratio(b, sysUXP, sysTCP, "goodput_MBps"), Bound: 0.95},
		{Name: "bottleneck, FEC adaptive: goodput ≥ FEC off", Ratio: ratio(b, sysUXPAdaptive, sysUXP, "goodput_MBps"), Bound: 1},
		{Name: "bottleneck: probe p99 ≤ 0.5× quic-go", Ratio: ratio(b, sysUXP, sysQUIC, "probe_p99_ms"), Bound: 0.5, AtMost: true},
		{Name: "bottleneck: reverse packets per data packet ≤ 0.55", Ratio: m(b, sysUXP, "ack_per_data"), Bound: 0.55, AtMost: true},
		{Name: "bottleneck-vs-tcp: uxp share ≥ 25% (%)", Ratio: m("bottleneck-vs-tcp", sysUXP, "share_pct"), Bound: 25},
		{Name: "bottleneck-vs-tcp: uxp share ≤ 75% (%)", Ratio: m("bottleneck-vs-tcp", sysUXP, "share_pct"), Bound: 75, AtMost: true},
		{Name: "bottleneck-loss: goodput ≥ TCP", Ratio: ratio(l, sysUXP, sysTCP, "goodput_MBps"), Bound: 1},
		{Name: "bottleneck-loss: goodput ≥ quic-go", Ratio: ratio(l, sysUXP, sysQUIC, "goodput_MBps"), Bound: 1},
	}
	for i := range t {
		if math.IsInf(t[i].Ratio, 0) {
			t[i].Ratio = math.NaN()
		}
	}
	return t
}
