package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// plan holds the durations and repetitions of one run.
type plan struct {
	reps        int
	lossReps    int
	bulk, rr    time.Duration
	loss        time.Duration
	scaleWindow time.Duration
	handshake   time.Duration
	sessions    []int
}

func makePlan(o *options) plan {
	p := plan{reps: 3, lossReps: 2, bulk: 4 * time.Second, rr: 4 * time.Second, loss: 15 * time.Second,
		scaleWindow: 10 * time.Second, handshake: 5 * time.Second, sessions: []int{1000, 10000, 50000}}
	if o.quick {
		p = plan{reps: 1, lossReps: 1, bulk: time.Second, rr: time.Second, loss: 3 * time.Second,
			scaleWindow: 2 * time.Second, handshake: time.Second, sessions: []int{1000}}
	}
	if o.reps > 0 {
		p.reps, p.lossReps = o.reps, o.reps
	}
	if s := splitList(o.scaleNs); len(s) > 0 {
		p.sessions = nil
		for _, v := range s {
			n, err := strconv.Atoi(v)
			if err == nil && n > 0 {
				p.sessions = append(p.sessions, n)
			}
		}
	}
	return p
}

// Systems per scenario.
var (
	baseSystems = []string{sysUXP, sysKCP, sysKCPSalsa, sysQUIC, sysTCP, sysUDP}
	lossSystems = []string{sysUXP, sysUXPFEC, sysUXPAdaptive, sysKCP, sysKCPSalsa, sysQUIC, sysTCP}
)

func orchestrate(ctx context.Context, o *options) error {
	p := makePlan(o)
	if o.profDir != "" {
		d, err := filepath.Abs(o.profDir)
		if err == nil {
			err = os.MkdirAll(d, 0o755)
		}
		if err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
		profileDir = d
	}
	r := &report{
		Started:   time.Now().UTC(),
		Quick:     o.quick,
		GoVersion: runtime.Version(),
		CPUs:      runtime.NumCPU(),
		Command:   "cd bench && go run . " + strings.Join(os.Args[1:], " "),
		Load:      loadAvg(),
	}
	want := func(s string) bool { f := splitList(o.only); return len(f) == 0 || slices.Contains(f, s) }
	pick := func(all []string) []string {
		f := splitList(o.systems)
		if len(f) == 0 {
			return all
		}
		var r []string
		for _, s := range all {
			if slices.Contains(f, s) {
				r = append(r, s)
			}
		}
		return r
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	start := time.Now()
	if want("bulk") {
		runInterleaved(ctx, r, "bulk", pick(baseSystems), p.reps, logf, func(sys string) (map[string]float64, error) {
			return bulkCase(ctx, sys, p.bulk)
		})
	}
	if want("rr") {
		runInterleaved(ctx, r, "rr", pick(baseSystems), p.reps, logf, func(sys string) (map[string]float64, error) {
			return rrCase(ctx, sys, p.rr)
		})
	}
	if want("loss") {
		if why := netnsUnavailable(o); why != "" {
			logf("loss: skipped: %s", why)
			r.Skipped = append(r.Skipped, "loss: "+why)
		} else {
			runInterleaved(ctx, r, "loss", pick(lossSystems), p.lossReps, logf, func(sys string) (map[string]float64, error) {
				return lossCase(ctx, sys, p.loss)
			})
		}
	}
	if want("game") {
		if why := netnsUnavailable(o); why != "" {
			logf("game: skipped: %s", why)
			r.Skipped = append(r.Skipped, "game: "+why)
		} else {
			d := gameDuration(o)
			runInterleaved(ctx, r, "game", pick(lossSystems), p.reps, logf, func(sys string) (map[string]float64, error) {
				return gameCase(ctx, sys, d)
			})
		}
	}
	if want("scale") && len(pick([]string{sysUXP})) > 0 {
		for _, n := range p.sessions {
			variant := fmt.Sprintf("%d sessions", n)
			logf("scale: %s", variant)
			m, err := scaleCase(ctx, n, p.scaleWindow)
			r.add("scale", sysUXP, variant, m, err)
			if err != nil {
				logf("scale %s: %v", variant, err)
			}
		}
	}
	// The soak and the restart storm run when named, or short with -quick
	// (CI's smoke run).
	named := func(s string) bool { return slices.Contains(splitList(o.only), s) || (o.quick && want(s)) }
	for _, scen := range []string{"soak", "restart"} {
		if !named(scen) {
			continue
		}
		sp := soakPlan(o, scen)
		variant := fmt.Sprintf("%d sessions, %v", sp.n, sp.dur)
		logf("%s: %s", scen, variant)
		m, err := soakCase(ctx, sp)
		r.add(scen, sysUXP, variant, m, err)
		if err != nil {
			logf("%s %s: %v", scen, variant, err)
		}
	}
	if want("handshake") && len(pick([]string{sysUXP})) > 0 {
		for rep := range p.reps {
			for _, cores := range []int{1, 2} {
				variant := fmt.Sprintf("%d core", cores)
				logf("handshake: %s (rep %d)", variant, rep+1)
				m, err := handshakeCase(ctx, cores, p.handshake)
				r.add("handshake", sysUXP, variant, m, err)
				if err != nil {
					logf("handshake %s: %v", variant, err)
				}
			}
		}
	}
	runBottleneck(ctx, o, r, p.reps, want, pick, logf)
	r.Elapsed = time.Since(start).Round(time.Second).String()
	r.summarize()
	if err := r.write(o.out); err != nil {
		return err
	}
	fmt.Print(r.markdown())
	logf("done in %s; wrote %s/results.md and results.json", r.Elapsed, o.out)
	return nil
}

// runInterleaved runs rep 1 of every system, then rep 2, and so on.
func runInterleaved(ctx context.Context, r *report, scen string, systems []string, reps int,
	logf func(string, ...any), run func(sys string) (map[string]float64, error)) {
	for rep := range reps {
		for _, sys := range systems {
			if ctx.Err() != nil {
				return
			}
			logf("%s: %s (rep %d/%d)", scen, sys, rep+1, reps)
			m, err := run(sys)
			if err != nil {
				logf("%s %s: %v", scen, sys, err)
			}
			r.add(scen, sys, "", m, err)
		}
	}
}

func bulkCase(ctx context.Context, sys string, d time.Duration) (map[string]float64, error) {
	srv, err := startServer(ctx, nil, sys, 0)
	if err != nil {
		return nil, err
	}
	defer srv.quit()
	if err := srv.mark(); err != nil {
		return nil, err
	}
	args := []string{"-sys", sys, "-scen", "bulk", "-addr", srv.addr, "-key", srv.key, "-dur", d.String()}
	res, err := runClient(ctx, nil, d+60*time.Second, args...)
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
	gb := float64(st.SinkBytes) / 1e9
	m := map[string]float64{
		"goodput_MBps": float64(st.SinkBytes) / 1e6 / (float64(st.SinkSpanNs) / 1e9),
		"cpu_s_per_GB": (float64(st.CPUNs) + float64(res.CPUNs)) / 1e9 / gb,
		"delivered":    float64(st.SinkBytes) / float64(max(res.SentBytes, 1)),
	}
	if res.PacketsOut > 0 {
		// uxp: the packets the client received (the server's ACKs, and
		// its heartbeats) per packet it sent.
		m["ack_per_data"] = float64(res.PacketsIn) / float64(res.PacketsOut)
	}
	return m, nil
}

func rrCase(ctx context.Context, sys string, d time.Duration) (map[string]float64, error) {
	srv, err := startServer(ctx, nil, sys, 0)
	if err != nil {
		return nil, err
	}
	defer srv.quit()
	args := []string{"-sys", sys, "-scen", "rr", "-size", "1024", "-addr", srv.addr, "-key", srv.key, "-dur", d.String()}
	res, err := runClient(ctx, nil, d+60*time.Second, args...)
	if err != nil {
		return nil, err
	}
	if len(res.RTTNs) == 0 {
		return nil, fmt.Errorf("no replies")
	}
	s := sortedNs(res.RTTNs)
	return map[string]float64{
		"p50_us":   pct(s, 50) / 1e3,
		"p99_us":   pct(s, 99) / 1e3,
		"p999_us":  pct(s, 99.9) / 1e3,
		"requests": float64(len(s)),
	}, nil
}

func scaleCase(ctx context.Context, n int, window time.Duration) (map[string]float64, error) {
	srv, err := startServer(ctx, nil, sysUXP, 0)
	if err != nil {
		return nil, err
	}
	defer srv.quit()
	// Load processes of at most loadPerProcess sessions each, one per
	// loopback address.
	per := loadPerProcess
	var loads []*child
	defer func() {
		for _, l := range loads {
			l.finish(30 * time.Second)
		}
	}()
	for left := n; left > 0; left -= per {
		k := min(left, per)
		bind := fmt.Sprintf("127.0.0.%d", 2+len(loads))
		load, err := startChild(ctx, loadWrap(), "-role", "client", "-scen", "scale", "-n", fmt.Sprint(k), "-addr", srv.addr, "-key", srv.key, "-bind", bind)
		if err != nil {
			return nil, err
		}
		loads = append(loads, load)
	}
	loaded, failed := 0, 0
	for _, load := range loads {
		l, err := load.line(time.Duration(n)*2*time.Millisecond + 180*time.Second)
		if err != nil {
			return nil, err
		}
		var ok, bad int
		if _, err := fmt.Sscanf(l, "LOADED %d %d", &ok, &bad); err != nil {
			return nil, fmt.Errorf("load generator: %q", l)
		}
		loaded, failed = loaded+ok, failed+bad
	}
	time.Sleep(2 * time.Second) // let the handshake burst settle
	if st0, err := srv.stats(); err == nil {
		fmt.Fprintf(os.Stderr, "%s scale %d: before the window: %d sessions; drops: %s\n",
			time.Now().Format("15:04:05"), n, st0.Sessions, st0.Drops)
	}
	if err := srv.mark(); err != nil {
		return nil, err
	}
	args := []string{"-sys", sysUXP, "-scen", "open", "-rate", "50", "-size", "100", "-addr", srv.addr, "-key", srv.key,
		"-dur", window.String(), "-grace", "2s"}
	res, err := runClient(ctx, nil, window+60*time.Second, args...)
	if err != nil {
		return nil, err
	}
	st, err := srv.stats()
	if err != nil {
		return nil, err
	}
	if st.Ended != "" || st.Sessions != int64(loaded)+1 {
		fmt.Fprintf(os.Stderr, "%s scale %d: %d sessions live of %d loaded (+1 probe); ended: %s; drops: %s\n",
			time.Now().Format("15:04:05"), n, st.Sessions, loaded, st.Ended, st.Drops)
	}
	sessions := float64(max(st.Sessions, 1))
	m := map[string]float64{
		"sessions":                 float64(st.Sessions),
		"load_failed":              float64(failed),
		"load_processes":           float64(len(loads)),
		"sessions_loaded":          float64(loaded),
		"server_cpu_pct":           100 * float64(st.CPUNs) / float64(st.WallNs),
		"rss_KB_per_session":       float64(st.RSS-st.BaseRSS) / 1024 / sessions,
		"heap_KB_per_session":      float64(st.Heap-st.BaseHeap) / 1024 / sessions,
		"goroutines_per_session":   float64(st.Goroutines-st.BaseGoroutines) / sessions,
		"server_goroutines":        float64(st.Goroutines),
		"probe_p99_ms":             0,
		"probe_lost":               float64(res.Lost),
		"server_rss_MB":            float64(st.RSS) / 1e6,
		"server_live_heap_MB":      float64(st.Heap) / 1e6,
		"probe_p50_ms":             0,
		"probe_requests_completed": float64(len(res.RTTNs)),
	}
	if len(res.RTTNs) > 0 {
		s := sortedNs(res.RTTNs)
		m["probe_p99_ms"] = pct(s, 99) / 1e6
		m["probe_p50_ms"] = pct(s, 50) / 1e6
	}
	return m, nil
}

func handshakeCase(ctx context.Context, cores int, d time.Duration) (map[string]float64, error) {
	var srvWrap, cliWrap []string
	if cores == 1 && hasTaskset() {
		// Server pinned to CPU 0, load generator to CPU 1, so that the
		// server really has one core of its own.
		srvWrap, cliWrap = []string{"taskset", "-c", "0"}, []string{"taskset", "-c", "1"}
	}
	srv, err := startServer(ctx, srvWrap, sysUXP, cores)
	if err != nil {
		return nil, err
	}
	defer srv.quit()
	if err := srv.mark(); err != nil {
		return nil, err
	}
	args := []string{"-scen", "hs", "-par", "16", "-addr", srv.addr, "-key", srv.key, "-dur", d.String()}
	res, err := runClient(ctx, cliWrap, d+60*time.Second, args...)
	if err != nil {
		return nil, err
	}
	st, err := srv.stats()
	if err != nil {
		return nil, err
	}
	secs := float64(res.ElapsedNs) / 1e9
	return map[string]float64{
		"handshakes_per_s":  float64(res.Handshakes) / secs,
		"server_cpu_pct":    100 * float64(st.CPUNs) / float64(st.WallNs),
		"server_cpu_us_per": float64(st.CPUNs) / 1e3 / float64(max(res.Handshakes, 1)),
		// What one server core completes when the load generator is not
		// the bottleneck: the client does the same three X25519
		// operations per handshake as the server, plus a socket and an
		// endpoint, so on a shared 2-core machine it cannot saturate the
		// server. Capacity is derived from the server's CPU per handshake.
		"capacity_per_core": 1e6 / (float64(st.CPUNs) / 1e3 / float64(max(res.Handshakes, 1))),
		"failures":          float64(res.Failures),
	}, nil
}

func hasTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil && runtime.NumCPU() >= 2
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// loadPerProcess bounds the sessions of one load process.
const loadPerProcess = 25000

// loadWrap runs the scale scenario's load generators at a lower CPU
// priority (nice 10), where nice exists. They stand in for clients on
// other machines: on this 2-vCPU machine they need as much CPU as the
// server, and under the kernel's fair sharing they would otherwise take it
// from the server they measure.
func loadWrap() []string {
	if _, err := exec.LookPath("nice"); err != nil {
		return nil
	}
	return []string{"nice", "-n", "10"}
}

// soakPlan is the soak's (or the restart storm's) settings: the issue's,
// or a short smoke run with -quick.
func soakPlan(o *options, scen string) soakParams {
	p := soakParams{n: 10000, dur: 20 * time.Minute, every: 10 * time.Second, rekey: 30 * time.Second,
		churn: 0.01, garbage: 200, probeHz: 20, burn: o.burn, out: o.out, profile: profileDir, profileAll: o.profEvery, label: scen,
		loss: o.loss, idle: o.idle, sockBuf: o.sockBuf, gcMode: o.gcMode}
	if o.quick {
		p.n, p.dur, p.every, p.rekey = 1000, 90*time.Second, 5*time.Second, 15*time.Second
	}
	if s := splitList(o.scaleNs); len(s) > 0 {
		if n, err := strconv.Atoi(s[0]); err == nil && n > 0 {
			p.n = n
		}
	}
	if o.soakDur > 0 {
		p.dur = o.soakDur
	}
	switch {
	case o.rekey > 0:
		p.rekey = o.rekey
	case o.rekey < 0:
		p.rekey = 0 // uxp's default
	}
	if scen == "restart" {
		// Clients attached, no churn, default rekeys; the server is
		// killed once they are all up and settled, and the run goes on
		// 60 s after (40 s with -quick).
		p.restart, p.churn, p.garbage, p.rekey, p.burn = true, 0, 0, 0, 0
		p.settleUp = 20 * time.Second
		p.dur = p.settleUp + 60*time.Second
		p.every = 2 * time.Second
		if o.quick {
			p.settleUp, p.dur = 10*time.Second, 50*time.Second
		}
	}
	return p
}
