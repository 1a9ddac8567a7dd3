package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// The soak (issue 18): a uxp server with thousands of sessions, for many
// minutes, through rekeys, churn, silent abandonment and garbage, with a
// probe measuring what a user would see.
//
//	cd bench && go run . -scenarios soak -sessions 10000 -duration 20m
//	cd bench && go run . -scenarios restart -sessions 10000
//
// Processes: the server (-role soakserver), one load generator per
// loadPerProcess sessions at nice 10 (-scen soak, soak_load.go; the first
// also sends the garbage) and the probe (-scen soakprobe, not niced).
// Every soak interval the orchestrator asks the server for STATS and reads
// the children's SAMPLE lines, and writes one row of soak.csv; at the end
// it writes soak-summary.md with the targets checked, and adds the
// figures to results.md. -burn D runs a CPU burner (one core) for D in the
// middle of the soak. The restart scenario kills the server (SIGKILL: no
// close frames) once the sessions are up, starts it again on the same
// address and key, and measures how long until every session is back.

// soakServerStats is the soak server's answer to STATS: absolute values;
// the orchestrator takes differences.
type soakServerStats struct {
	CPUNs int64 `json:"cpu_ns"` // user+system since start
	Heap  int64 `json:"heap"`   // live heap after a GC
	// Heap2 is the live heap after a second GC: sync.Pool keeps what it
	// held at a GC for one more cycle (its victim cache), so after one GC
	// the packet and segment buffers a burst left in the pools still
	// count, and after two they do not. Taken once a minute (the value
	// carries over between).
	Heap2 int64 `json:"heap2"`
	Held  int64 `json:"held"` // ServerStats.HeldBytes
	RSS   int64 `json:"rss"`
	// RSS2 is RSS less the free heap pages the runtime has not yet
	// returned to the OS (MemStats HeapIdle − HeapReleased): what the
	// process holds. RSS between two samples swings by the heap's GC
	// cycle and the scavenger's pace; RSS2 does not, so a leak shows in
	// its slope without that noise.
	RSS2 int64 `json:"rss2"`
	// At the RSS2 sample, from runtime.MemStats: the heap's spans in use
	// (live objects and the free slots between them: HeapInuse −
	// HeapAlloc is fragmentation), and the runtime's own memory (span
	// structures, GC metadata, stacks and the rest: Sys − HeapSys).
	HeapInuse int64 `json:"heap_inuse"`
	// RSSMean and RSS2Mean are RSS and RSS2 read once a second over the
	// interval and averaged (rssMeter). RSS and RSS2 are read at one
	// instant, right after the sample's GC, so they swing by where the
	// heap's GC cycle and the scavenger happened to be (at 10,000
	// sessions, ±10 MB from one sample to the next), and a straight line
	// fitted over 15 minutes of such samples has a standard error of
	// several % per hour. The means carry the same trend with a tenth of
	// the noise; the summary's RSS slopes are taken from them.
	RSSMean        int64         `json:"rss_mean"`
	RSS2Mean       int64         `json:"rss2_mean"`
	RuntimeMeta    int64         `json:"runtime_meta"`
	Goroutines     int           `json:"goroutines"`
	FDs            int           `json:"fds"`
	Sessions       int           `json:"sessions"`
	TimerEvents    uint64        `json:"timer_events"`
	TimerFlushes   uint64        `json:"timer_flushes"`
	Rekeys         uint64        `json:"rekeys"`
	RekeysDeferred uint64        `json:"rekeys_deferred"`
	Cookies        uint64        `json:"cookies"`
	Drops          uxp.DropStats `json:"drops"`
	Closed         string        `json:"closed"` // sessions closed, by reason
	// SchedP99Ms and SchedMaxMs are the server's goroutine scheduling
	// latency (runtime/metrics /sched/latencies) over the interval since
	// the previous STATS: how long its runnable goroutines waited for a
	// CPU. A probe spike with a high figure here is the server starved of
	// CPU; a spike without one is the server's own work, or the clients'.
	SchedP99Ms float64 `json:"sched_p99_ms"`
	SchedMaxMs float64 `json:"sched_max_ms"`
	// RunDelayNs is runDelay: the kernel's count of the time the
	// server's threads waited for a CPU, since start.
	RunDelayNs int64 `json:"run_delay_ns"`
	// GCPauseMaxMs is the longest stop-the-world GC pause since the
	// previous STATS (before this STATS's own forced GC).
	GCPauseMaxMs float64 `json:"gc_pause_max_ms"`
}

func fdCount() int {
	e, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(e)
}

// soakServerRole is the soak's server: the bench's echo server with
// RekeyAfterTime o.rekey, on o.addr with key o.privKey (so that a
// restarted server is the same server to its clients). Commands on stdin:
// STATS, PROF <file> <seconds> (a CPU profile), HEAP <file> (a heap profile), QUIT; each answers one
// line.
func soakServerRole(_ context.Context, o *options) error {
	priv, err := uxp.ParsePrivateKey(o.privKey)
	if err != nil {
		return err
	}
	ua, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return err
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return err
	}
	_ = pc.SetReadBuffer(4 << 20)
	_ = pc.SetWriteBuffer(4 << 20)
	sockBuf := 0 // uxp's default
	if o.sockBuf > 0 && forceSockBuf(pc, o.sockBuf) {
		sockBuf = -1 // set here; uxp leaves it
	}
	h := &soakHandler{Server: uxpbench.NewServer()}
	srv, err := uxp.NewServer(pc, h, &uxp.Config{PrivateKey: priv, KCP: benchKCP(), RekeyAfterTime: o.rekey, Admission: benchAdmission,
		SocketBufferBytes: sockBuf})
	if err != nil {
		pc.Close()
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	raiseNoFile(1 << 16)
	pub, err := priv.PublicKey()
	if err != nil {
		return err
	}
	fmt.Printf("READY %s %s\n", srv.Addr(), pub)
	var sched, gcPauses schedLatency
	var samples int
	var heap2 int64
	meter := startRSSMeter(time.Second)
	defer meter.stop()
	sched.read()
	gcPauses.readMetric(gcPauseMetric)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "STATS":
			_, gcMax := gcPauses.readMetric(gcPauseMetric)
			st := srv.Stats()
			te, tf, rd, held := timerStats(st)
			var closed []string
			for _, c := range st.SessionsClosed {
				if c.Count > 0 {
					closed = append(closed, fmt.Sprintf("%s=%d", c.Reason, c.Count))
				}
			}
			// One GC per sample (the heap after GC), a second one (Heap2)
			// once a minute: every full GC of a server this size takes
			// both cores for a while, and the load generator, at nice
			// 10, stalls behind them; three GCs every 10 s were enough
			// to make it miss ACKs at 20,000 sessions.
			var heap int64
			if o.gcMode == "sample" {
				heap = liveHeap()
				if samples%6 == 0 {
					heap2 = liveHeap()
				}
			} else {
				// The runtime's own last GC: no forced GC
				// disturbs the heap's cycle (a forced GC every
				// 10 s made RSS the running maximum of 10 s
				// allocation peaks, well below the GC goal).
				heap = markedLiveHeap()
				heap2 = heap
			}
			samples++
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			rssNow := rss()
			j, _ := json.Marshal(soakServerStats{
				Heap2: heap2,
				CPUNs: int64(cpuTime()), Heap: heap, RSS: rssNow, Goroutines: runtime.NumGoroutine(), FDs: fdCount(),
				Sessions: st.Sessions, TimerEvents: te, TimerFlushes: tf, Rekeys: st.Rekeys,
				RekeysDeferred: rd, Held: int64(held), Cookies: st.Handshake.CookiesSent, Drops: st.Drops, Closed: strings.Join(closed, " "),
				// Free heap pages the runtime has not yet returned are
				// resident but not held: RSS2 leaves them out.
				RSS2:      rssNow - int64(ms.HeapIdle-ms.HeapReleased),
				HeapInuse: int64(ms.HeapInuse), RuntimeMeta: int64(ms.Sys - ms.HeapSys),
			})
			var ss soakServerStats
			_ = json.Unmarshal(j, &ss)
			ss.RSSMean, ss.RSS2Mean = meter.take()
			ss.SchedP99Ms, ss.SchedMaxMs = sched.read()
			ss.RunDelayNs = int64(runDelay())
			ss.GCPauseMaxMs = gcMax
			gcPauses.readMetric(gcPauseMetric) // leave out this STATS's own GC
			j, _ = json.Marshal(ss)
			fmt.Println(string(j))
		case "HEAP": // HEAP <file>: a heap profile after a GC
			if len(f) == 2 {
				if p, err := os.Create(f[1]); err == nil {
					runtime.GC()
					_ = pprof.Lookup("heap").WriteTo(p, 0)
					p.Close()
				}
			}
			fmt.Println("OK")
		case "PROF": // PROF <file> <seconds>: a CPU profile of that long
			if len(f) == 3 {
				secs, _ := time.ParseDuration(f[2] + "s")
				if p, err := os.Create(f[1]); err == nil && pprof.StartCPUProfile(p) == nil {
					time.AfterFunc(secs, func() {
						pprof.StopCPUProfile()
						p.Close()
					})
				}
			}
			fmt.Println("OK")
		case "QUIT":
			return nil
		}
	}
	return nil
}

// soakRow is one interval of the soak: one row of soak.csv.
type soakRow struct {
	T             float64 // seconds since the load was up
	Sessions      int
	CPUPct        float64 // server CPU over the interval, % of one core
	HeapMB, RSSMB float64
	Heap2MB       float64 // after a second GC (soakServerStats.Heap2)
	RSS2MB        float64 // RSS less free unreturned heap pages (soakServerStats.RSS2)
	RSSMeanMB     float64 // soakServerStats.RSSMean: RSS averaged over the interval
	RSS2MeanMB    float64 // soakServerStats.RSS2Mean
	HeapInuseMB   float64 // soakServerStats.HeapInuse
	MetaMB        float64 // soakServerStats.RuntimeMeta
	HeldMB        float64 // ServerStats.HeldBytes: what the sessions hold for data in transit
	Goroutines    int
	FDs           int
	ProbeP50      float64 // ms
	ProbeP99      float64
	ProbeMax      float64
	SchedP99      float64 // ms, the server's goroutine scheduling latency
	SchedMax      float64
	ProbeInP99    float64 // ms, the probe's way to the server's callback (soakHandler)
	ProbeOutP99   float64 // and back
	RunDelayPct   float64 // the server's threads waiting for a CPU (runDelay), % of the interval
	ProbeSchedMax float64 // ms, the probe process's goroutine scheduling latency
	ProbeRunDelay float64 // the probe's threads waiting for a CPU, % of the interval
	// The kernel's drops of datagrams that found a full socket receive
	// buffer, in the interval: the server's socket, the load generators'.
	KernelDropsSrv, KernelDropsLoad int64
	GCPauseMax                      float64 // ms, the server's longest GC pause
	ProbeRetrans                    uint64  // the probe session's retransmissions in the interval
	ProbeN                          int
	ProbeLost                       int
	Sent, Echoed                    int64 // in the interval
	OutOfOrder                      int64 // cumulative from here on
	Dup                             int64
	Late                            int64
	LostDead                        int64
	IdleClosed                      int64
	OtherClosed                     int64
	ClosedOut                       int64
	TimerEventsPS                   float64 // per second over the interval
	TimerFlushesPS                  float64
	RekeysPS                        float64
	RekeysDeferred                  uint64
	Drops                           uxp.DropStats // in the interval
	Burn                            bool
}

var soakHeader = []string{"t_s", "sessions", "server_cpu_pct", "heap_MB", "heap2_MB", "held_MB", "rss_MB", "rss_held_MB", "rss_mean_MB", "rss_held_mean_MB", "heap_inuse_MB", "runtime_meta_MB", "goroutines", "fds",
	"probe_p50_ms", "probe_p99_ms", "probe_max_ms", "server_sched_p99_ms", "server_sched_max_ms", "probe_in_p99_ms", "probe_out_p99_ms", "server_run_delay_pct", "probe_sched_max_ms", "probe_run_delay_pct", "server_gc_pause_max_ms", "kernel_drops_server", "kernel_drops_load", "probe_retrans", "probe_n", "probe_lost", "sent", "echoed",
	"out_of_order", "dup", "late_5s", "lost_dead", "idle_closed", "other_closed", "closed_outstanding",
	"timer_events_per_s", "timer_flushes_per_s", "rekeys_per_s", "rekeys_deferred",
	"drop_overload", "drop_unknown", "drop_malformed", "drop_auth", "drop_replay", "drop_ratelimited", "burn"}

func (r soakRow) csv() []string {
	f := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	d := func(v int64) string { return fmt.Sprint(v) }
	return []string{f(r.T), fmt.Sprint(r.Sessions), f(r.CPUPct), f(r.HeapMB), f(r.Heap2MB), f(r.HeldMB), f(r.RSSMB), f(r.RSS2MB), f(r.RSSMeanMB), f(r.RSS2MeanMB), f(r.HeapInuseMB), f(r.MetaMB), fmt.Sprint(r.Goroutines), fmt.Sprint(r.FDs),
		f(r.ProbeP50), f(r.ProbeP99), f(r.ProbeMax), f(r.SchedP99), f(r.SchedMax), f(r.ProbeInP99), f(r.ProbeOutP99), f(r.RunDelayPct), f(r.ProbeSchedMax), f(r.ProbeRunDelay), f(r.GCPauseMax), d(r.KernelDropsSrv), d(r.KernelDropsLoad), fmt.Sprint(r.ProbeRetrans), fmt.Sprint(r.ProbeN), fmt.Sprint(r.ProbeLost), d(r.Sent), d(r.Echoed),
		d(r.OutOfOrder), d(r.Dup), d(r.Late), d(r.LostDead), d(r.IdleClosed), d(r.OtherClosed), d(r.ClosedOut),
		f(r.TimerEventsPS), f(r.TimerFlushesPS), f(r.RekeysPS), fmt.Sprint(r.RekeysDeferred),
		fmt.Sprint(r.Drops.Overload), fmt.Sprint(r.Drops.UnknownSession), fmt.Sprint(r.Drops.Malformed),
		fmt.Sprint(r.Drops.AuthFailed), fmt.Sprint(r.Drops.Replay), fmt.Sprint(r.Drops.RateLimited), fmt.Sprint(r.Burn)}
}

func dropsSub(a, b uxp.DropStats) uxp.DropStats {
	return uxp.DropStats{Malformed: a.Malformed - b.Malformed, AuthFailed: a.AuthFailed - b.AuthFailed, Replay: a.Replay - b.Replay,
		UnknownSession: a.UnknownSession - b.UnknownSession, Overload: a.Overload - b.Overload, RateLimited: a.RateLimited - b.RateLimited}
}

// soakParams are one soak or restart run's settings.
type soakParams struct {
	n       int
	dur     time.Duration
	every   time.Duration
	rekey   time.Duration
	churn   float64
	garbage int
	probeHz int
	burn    time.Duration // CPU burner in the middle (0: none)
	restart bool          // restart storm instead of the soak's churn
	out     string
	profile string // directory for a mid-run server CPU profile ("" none)
	// profileAll is a directory for a server CPU profile of every
	// interval ("" none): to find what a latency spike was.
	profileAll string
	label      string
	settleUp   time.Duration
	loss       float64 // each way, at the load generators' sockets
	idle       bool    // load sessions send no messages
	sockBuf    int     // forced socket buffers (forceSockBuf), 0: defaults
	gcMode     string  // how the server reads its live heap (options.gcMode)
}

// soakServer starts a soak server child and reads its READY line.
func startSoakServer(ctx context.Context, addr, priv string, p soakParams) (*server, error) {
	return awaitServer(ctx, nil, "soak server", "-role", "soakserver", "-addr", addr, "-privkey", priv, "-rekey", p.rekey.String(),
		"-sockbuf", fmt.Sprint(p.sockBuf), "-gc", p.gcMode)
}

func (s *server) soakStats() (soakServerStats, error) {
	var st soakServerStats
	if err := s.send("STATS"); err != nil {
		return st, err
	}
	l, err := s.line(60 * time.Second)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(l), &st)
}

func (s *server) command(c string) {
	if s.send(c) == nil {
		_, _ = s.line(10 * time.Second)
	}
}

// lastSample drains c's pending lines and decodes the newest SAMPLE into
// v; it reports whether there was one.
func lastSample(c *child, v any) bool {
	got := false
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return got
			}
			if j, found := strings.CutPrefix(l, "SAMPLE "); found && json.Unmarshal([]byte(j), v) == nil {
				got = true
			}
		default:
			return got
		}
	}
}

// freeUDPAddr finds a loopback port free for the server, which a restart
// must reuse.
func freeUDPAddr() (string, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer pc.Close()
	return pc.LocalAddr().String(), nil
}

// soakCase runs one soak (or restart storm) and returns its summary
// figures for results.md.
func soakCase(ctx context.Context, p soakParams) (map[string]float64, error) {
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s %s: "+format+"\n", append([]any{time.Now().Format("15:04:05"), p.label}, a...)...)
	}
	kp, err := uxp.GenerateKey()
	if err != nil {
		return nil, err
	}
	addr, err := freeUDPAddr()
	if err != nil {
		return nil, err
	}
	srv, err := startSoakServer(ctx, addr, kp.Private.String(), p)
	if err != nil {
		return nil, err
	}
	defer func() { srv.quit() }()
	var loads []*child
	defer func() {
		for _, l := range loads {
			l.finish(30 * time.Second)
		}
	}()
	for left := p.n; left > 0; left -= loadPerProcess {
		k := min(left, loadPerProcess)
		garbage := 0
		if len(loads) == 0 {
			garbage = p.garbage
		}
		load, err := startChild(ctx, loadWrap(), "-role", "client", "-scen", "soak", "-n", fmt.Sprint(k), "-addr", srv.addr,
			"-key", srv.key, "-bind", fmt.Sprintf("127.0.0.%d", 2+len(loads)), "-rekey", p.rekey.String(),
			"-churn", fmt.Sprint(p.churn), "-garbage", fmt.Sprint(garbage), "-every", p.every.String(),
			"-loss", fmt.Sprint(p.loss), fmt.Sprintf("-idle=%v", p.idle), "-sockbuf", fmt.Sprint(p.sockBuf))
		if err != nil {
			return nil, err
		}
		loads = append(loads, load)
	}
	loaded := 0
	for _, load := range loads {
		l, err := load.line(time.Duration(p.n)*3*time.Millisecond + 180*time.Second)
		if err != nil {
			return nil, err
		}
		var ok, bad int
		if _, err := fmt.Sscanf(l, "LOADED %d %d", &ok, &bad); err != nil {
			return nil, fmt.Errorf("load generator: %q", l)
		}
		loaded += ok
	}
	logf("%d sessions loaded", loaded)
	probeC, err := startChild(ctx, nil, "-role", "client", "-scen", "soakprobe", "-addr", srv.addr, "-key", srv.key,
		"-rekey", p.rekey.String(), "-rate", fmt.Sprint(p.probeHz), "-every", p.every.String(), "-sockbuf", fmt.Sprint(p.sockBuf))
	if err != nil {
		return nil, err
	}
	defer probeC.finish(10 * time.Second)
	if l, err := probeC.line(30 * time.Second); err != nil || l != "PROBING" {
		return nil, fmt.Errorf("probe: %q %v", l, err)
	}

	if err := os.MkdirAll(p.out, 0o755); err != nil {
		return nil, err
	}
	name := "soak"
	if p.restart {
		name = "restart"
	}
	csvPath := filepath.Join(p.out, name+".csv")
	cf, err := os.Create(csvPath)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	w := csv.NewWriter(cf)
	_ = w.Write(soakHeader)

	start := time.Now()
	prevSt, err := srv.soakStats()
	if err != nil {
		return nil, err
	}
	prevAt := time.Now()
	var prevLoad loadSample
	prevKdSrv, prevKdLoad := soakKernelDrops(srv.addr, len(loads))
	loadsNow := make([]loadSample, len(loads))
	var rows []soakRow
	var probeS probeSample
	var burner *burnProc
	burnFrom, burnTo := p.dur/2-p.burn/2, p.dur/2+p.burn/2
	restartAt := time.Duration(-1)
	if p.restart {
		restartAt = p.settleUp
	}
	var restartedAt time.Time
	var backAfter time.Duration = -1
	profiled := false
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for time.Since(start) < p.dur {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		el := time.Since(start)
		if p.burn > 0 && burner == nil && el >= burnFrom && el < burnTo {
			burner = startBurn()
			logf("CPU burner on (one core, %v)", p.burn)
		}
		if burner != nil && el >= burnTo {
			burner.stop()
			burner = nil
			logf("CPU burner off")
		}
		if p.profile != "" && !profiled && el >= p.dur/2 {
			f := filepath.Join(p.profile, name+"-server.pprof")
			srv.command("PROF " + f + " 10")
			profiled = true
			logf("CPU profile (10 s) into %s", f)
		}
		if p.profileAll != "" {
			// One profile per interval (a little shorter, so that each
			// ends before the next starts), named by its start time.
			f := filepath.Join(p.profileAll, fmt.Sprintf("%s-server-%04.0f.pprof", name, el.Seconds()))
			srv.command(fmt.Sprintf("PROF %s %.0f", f, max(1, p.every.Seconds()-1)))
			// And a heap profile every 5 minutes, to tell a slow growth's
			// owner (go tool pprof -base the earlier one).
			if n := int(el / p.every); n%int(max(1, 5*time.Minute/p.every)) == 0 {
				srv.command("HEAP " + filepath.Join(p.profileAll, fmt.Sprintf("%s-heap-%04.0f.pprof", name, el.Seconds())))
			}
		}
		if restartAt >= 0 && restartedAt.IsZero() && el >= restartAt {
			logf("killing the server (SIGKILL) and starting it again on %s", srv.addr)
			_ = srv.cmd.Process.Signal(syscall.SIGKILL)
			srv.finish(5 * time.Second)
			ns, err := startSoakServer(ctx, srv.addr, kp.Private.String(), p)
			if err != nil {
				return nil, err
			}
			srv = ns
			restartedAt = time.Now()
			prevSt = soakServerStats{}
		}
		st, err := srv.soakStats()
		if err != nil {
			return nil, err
		}
		kdSrv, kdLoad := soakKernelDrops(srv.addr, len(loads))
		now := time.Now()
		dt := now.Sub(prevAt).Seconds()
		var agg loadSample
		for i, l := range loads {
			lastSample(l, &loadsNow[i])
			a, b := &agg, loadsNow[i]
			a.Live += b.Live
			a.Sent += b.Sent
			a.Echoed += b.Echoed
			a.OutOfOrder += b.OutOfOrder
			a.Dup += b.Dup
			a.Late += b.Late
			a.LostDead += b.LostDead
			a.IdleClosed += b.IdleClosed
			a.OtherClosed += b.OtherClosed
			a.ClosedOut += b.ClosedOut
			a.Closed += b.Closed
			a.Abandoned += b.Abandoned
			a.Dials += b.Dials
		}
		probeS = probeSample{}
		lastSample(probeC, &probeS)
		cpu := float64(st.CPUNs-prevSt.CPUNs) / 1e9 / dt * 100
		if prevSt.CPUNs == 0 { // restarted: since its start
			cpu = float64(st.CPUNs) / 1e9 / dt * 100
		}
		row := soakRow{
			T: el.Seconds(), Sessions: st.Sessions, CPUPct: cpu, HeapMB: float64(st.Heap) / 1e6, Heap2MB: float64(st.Heap2) / 1e6, HeldMB: float64(st.Held) / 1e6, RSSMB: float64(st.RSS) / 1e6, RSS2MB: float64(st.RSS2) / 1e6, RSSMeanMB: float64(st.RSSMean) / 1e6, RSS2MeanMB: float64(st.RSS2Mean) / 1e6, HeapInuseMB: float64(st.HeapInuse) / 1e6, MetaMB: float64(st.RuntimeMeta) / 1e6,
			Goroutines: st.Goroutines, FDs: st.FDs, ProbeP50: probeS.P50ms, ProbeP99: probeS.P99ms, ProbeMax: probeS.MaxMs,
			SchedP99: st.SchedP99Ms, SchedMax: st.SchedMaxMs, ProbeInP99: probeS.InP99ms, ProbeOutP99: probeS.OutP99ms,
			RunDelayPct: float64(st.RunDelayNs-prevSt.RunDelayNs) / 1e9 / dt * 100, ProbeSchedMax: probeS.SchedMaxMs, ProbeRunDelay: probeS.RunDelayPct, GCPauseMax: st.GCPauseMaxMs, ProbeRetrans: probeS.Retrans, KernelDropsSrv: kdSrv - prevKdSrv, KernelDropsLoad: kdLoad - prevKdLoad,
			ProbeN: probeS.N, ProbeLost: probeS.Lost, Sent: agg.Sent - prevLoad.Sent, Echoed: agg.Echoed - prevLoad.Echoed,
			OutOfOrder: agg.OutOfOrder, Dup: agg.Dup, Late: agg.Late, LostDead: agg.LostDead, IdleClosed: agg.IdleClosed,
			OtherClosed: agg.OtherClosed, ClosedOut: agg.ClosedOut,
			TimerEventsPS: float64(st.TimerEvents-prevSt.TimerEvents) / dt, TimerFlushesPS: float64(st.TimerFlushes-prevSt.TimerFlushes) / dt,
			RekeysPS: float64(st.Rekeys-prevSt.Rekeys) / dt, RekeysDeferred: st.RekeysDeferred, Drops: dropsSub(st.Drops, prevSt.Drops),
			Burn: burner != nil,
		}
		rows = append(rows, row)
		_ = w.Write(row.csv())
		w.Flush()
		logf("t=%3.0fs sessions=%d cpu=%.0f%% heap=%.0fMB held=%.1fMB rss=%.0fMB gr=%d fds=%d probe p50=%.2f p99=%.2f max=%.1fms lost=%d in/out p99=%.1f/%.1f sched p99=%.1f max=%.1fms runq=%.0f%% probe sched max=%.1fms runq=%.0f%% gc pause max=%.1fms kdrops srv=%d load=%d probe retrans=%d | sent=%d echoed=%d ooo=%d lostDead=%d idle=%d other=%d closedOut=%d | timers/s=%.0f flushes/s=%.0f rekeys/s=%.0f deferred=%d | drops %+v closed: %s",
			row.T, row.Sessions, row.CPUPct, row.HeapMB, row.HeldMB, row.RSSMB, row.Goroutines, row.FDs, row.ProbeP50, row.ProbeP99, row.ProbeMax, row.ProbeLost, row.ProbeInP99, row.ProbeOutP99, row.SchedP99, row.SchedMax, row.RunDelayPct, row.ProbeSchedMax, row.ProbeRunDelay, row.GCPauseMax, row.KernelDropsSrv, row.KernelDropsLoad, row.ProbeRetrans,
			row.Sent, row.Echoed, row.OutOfOrder, row.LostDead, row.IdleClosed, row.OtherClosed, row.ClosedOut,
			row.TimerEventsPS, row.TimerFlushesPS, row.RekeysPS, row.RekeysDeferred, row.Drops, st.Closed)
		if !restartedAt.IsZero() && backAfter < 0 && st.Sessions >= loaded+1 {
			backAfter = now.Sub(restartedAt)
			logf("all %d sessions back %.1f s after the restart", st.Sessions, backAfter.Seconds())
		}
		prevSt, prevAt, prevLoad = st, now, agg
		prevKdSrv, prevKdLoad = kdSrv, kdLoad
	}
	if burner != nil {
		burner.stop()
	}
	m := summarizeSoak(p, rows, loaded, backAfter, restartedAt, start)
	if err := writeSoakSummary(p, name, m, rows); err != nil {
		return nil, err
	}
	logf("wrote %s and %s", csvPath, filepath.Join(p.out, name+"-summary.md"))
	return m, nil
}

// burnProc is a CPU burner: a child process spinning on one core.
type burnProc struct{ c *child }

func startBurn() *burnProc {
	c, err := startChild(context.Background(), nil, "-role", "burn")
	if err != nil {
		return nil
	}
	return &burnProc{c: c}
}

func (b *burnProc) stop() {
	if b != nil {
		b.c.finish(5 * time.Second)
	}
}

// burnRole spins one core until stdin closes.
func burnRole() error {
	runtime.GOMAXPROCS(1)
	stop := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		close(stop)
	}()
	x := 0
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		for range 1 << 20 {
			x = x*31 + 7
		}
		_ = x
	}
}

// slopePctPerHour is the least-squares slope of ys over ts (seconds), in
// percent of the mean of ys per hour.
func slopePctPerHour(ts, ys []float64) float64 {
	n := float64(len(ts))
	if n < 3 {
		return 0
	}
	var st, sy, stt, sty float64
	for i := range ts {
		st += ts[i]
		sy += ys[i]
		stt += ts[i] * ts[i]
		sty += ts[i] * ys[i]
	}
	den := n*stt - st*st
	if den == 0 || sy == 0 {
		return 0
	}
	slope := (n*sty - st*sy) / den // per second
	return slope * 3600 / (sy / n) * 100
}

// summarizeSoak computes the figures from the rows.
func summarizeSoak(p soakParams, rows []soakRow, loaded int, backAfter time.Duration, restartedAt, start time.Time) map[string]float64 {
	m := map[string]float64{"sessions_loaded": float64(loaded), "intervals": float64(len(rows))}
	if len(rows) == 0 {
		return m
	}
	last := rows[len(rows)-1]
	var worstP99, cpuSum, timerSum, flushSum float64
	var heapFirst, heapMax, heap2First, heap2Max float64
	nFirst := 0
	var quiet []soakRow // rows outside the burn and its 10 s recovery
	burnFrom, burnTo := (p.dur/2 - p.burn/2).Seconds(), (p.dur/2+p.burn/2).Seconds()+10
	for _, r := range rows {
		if p.burn > 0 && r.T > burnFrom && r.T <= burnTo+p.every.Seconds() {
			continue
		}
		quiet = append(quiet, r)
	}
	for _, r := range quiet {
		worstP99 = max(worstP99, r.ProbeP99)
		cpuSum += r.CPUPct
		timerSum += r.TimerEventsPS
		flushSum += r.TimerFlushesPS
		if r.T <= 60 {
			heapFirst += r.HeapMB
			heap2First += r.Heap2MB
			nFirst++
		}
		heapMax = max(heapMax, r.HeapMB)
		heap2Max = max(heap2Max, r.Heap2MB)
	}
	if nFirst > 0 {
		heapFirst /= float64(nFirst)
		heap2First /= float64(nFirst)
	}
	nq := float64(max(len(quiet), 1))
	m["probe_p99_worst_ms"] = worstP99
	m["probe_p50_last_ms"] = last.ProbeP50
	m["lost_on_live_sessions"] = float64(last.LostDead + last.OutOfOrder)
	m["out_of_order"] = float64(last.OutOfOrder)
	m["dup"] = float64(last.Dup)
	m["late_5s"] = float64(last.Late)
	m["idle_closed_in_use"] = float64(last.IdleClosed)
	m["other_closed"] = float64(last.OtherClosed)
	m["closed_outstanding"] = float64(last.ClosedOut)
	m["server_cpu_pct_mean"] = cpuSum / nq
	m["cpu_pct_per_1k_sessions"] = cpuSum / nq / max(float64(loaded), 1) * 1000
	m["timer_events_per_s_mean"] = timerSum / nq
	m["timer_events_per_session_s"] = timerSum / nq / max(float64(loaded), 1)
	m["timer_flushes_per_s_mean"] = flushSum / nq
	m["heap_first_min_MB"] = heapFirst
	m["heap_max_MB"] = heapMax
	m["heap2_first_min_MB"] = heap2First
	m["heap2_max_MB"] = heap2Max
	if heap2First > 0 {
		m["heap2_max_over_first_min"] = heap2Max / heap2First
	}
	if heapFirst > 0 {
		m["heap_max_over_first_min"] = heapMax / heapFirst
	}
	// Slopes over the last 15 minutes (or the last three quarters of a
	// shorter run).
	from := rows[len(rows)-1].T - 15*60
	if from < rows[0].T {
		from = rows[len(rows)-1].T * 0.25
	}
	var ts, rss, rss2, rssAt, rss2At, gr, fds []float64
	for _, r := range quiet {
		if r.T >= from {
			ts = append(ts, r.T)
			rss = append(rss, r.RSSMeanMB)
			rss2 = append(rss2, r.RSS2MeanMB)
			rssAt = append(rssAt, r.RSSMB)
			rss2At = append(rss2At, r.RSS2MB)
			gr = append(gr, float64(r.Goroutines))
			fds = append(fds, float64(r.FDs))
		}
	}
	// The targets' RSS slopes are fitted to the interval means (rssMeter);
	// the slopes of the single readings after each sample's GC are
	// reported too, with their noise.
	m["rss_slope_pct_per_h"] = slopePctPerHour(ts, rss)
	m["rss_held_slope_pct_per_h"] = slopePctPerHour(ts, rss2)
	m["rss_after_gc_slope_pct_per_h"] = slopePctPerHour(ts, rssAt)
	m["rss_held_after_gc_slope_pct_per_h"] = slopePctPerHour(ts, rss2At)
	m["goroutines_slope_pct_per_h"] = slopePctPerHour(ts, gr)
	m["fds_slope_pct_per_h"] = slopePctPerHour(ts, fds)
	m["rss_last_MB"] = last.RSSMeanMB
	m["rss_held_last_MB"] = last.RSS2MeanMB
	var dropsOverload uint64
	for _, r := range rows {
		dropsOverload += r.Drops.Overload
	}
	m["drops_overload"] = float64(dropsOverload)
	if p.restart {
		m["restart_back_s"] = -1
		if backAfter >= 0 {
			m["restart_back_s"] = backAfter.Seconds()
		}
		// The probe's p99 settles when no interval from then on exceeds
		// 50 ms.
		rt := restartedAt.Sub(start).Seconds()
		settle := -1.0
		for i := len(rows) - 1; i >= 0 && rows[i].T > rt; i-- {
			if rows[i].ProbeP99 > 50 || rows[i].ProbeN == 0 {
				break
			}
			settle = max(0, rows[i].T-p.every.Seconds()-rt)
		}
		m["restart_probe_p99_ok_after_s"] = settle
	}
	return m
}

// writeSoakSummary writes <name>-summary.md: the settings, the targets
// met or not, and the figures.
func writeSoakSummary(p soakParams, name string, m map[string]float64, rows []soakRow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %d sessions, %v\n\n", name, p.n, p.dur)
	rekey := p.rekey.String()
	if p.rekey == 0 {
		rekey = "default (2 min)"
	}
	fmt.Fprintf(&b, "RekeyAfterTime %s, churn %.1f %%/s (70 %% Close, 30 %% silent), %d garbage datagrams/s, probe %d/s, sampled every %v",
		rekey, p.churn*100, p.garbage, p.probeHz, p.every)
	if p.burn > 0 {
		fmt.Fprintf(&b, ", one core burnt for %v in the middle", p.burn)
	}
	if p.gcMode == "sample" {
		fmt.Fprintf(&b, ", heap read after a forced GC per sample")
	} else {
		fmt.Fprintf(&b, ", heap read from the runtime's own last GC (no forced GC)")
	}
	if p.loss > 0 {
		fmt.Fprintf(&b, ", %.0f %% loss each way at the load generators", p.loss*100)
	}
	if p.idle {
		b.WriteString(", load sessions idle (no messages)")
	}
	fmt.Fprintf(&b, ". Rows: %s.csv.\n\n| target | measured | met |\n|---|---|---|\n", name)
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	if !p.restart {
		// The restart storm loses the server's sessions on purpose: its
		// losses and idle timeouts are figures below, not targets.
		fmt.Fprintf(&b, "| probe p99 <= 50 ms in every interval | worst %.1f ms | %s |\n", m["probe_p99_worst_ms"], yes(m["probe_p99_worst_ms"] <= 50))
		fmt.Fprintf(&b, "| no message lost on a live session | %.0f | %s |\n", m["lost_on_live_sessions"], yes(m["lost_on_live_sessions"] == 0))
		fmt.Fprintf(&b, "| no session idled out while in use | %.0f | %s |\n", m["idle_closed_in_use"], yes(m["idle_closed_in_use"] == 0))
		fmt.Fprintf(&b, "| heap after GC <= 1.5x the first minute's | %.2fx (%.0f of %.0f MB) | %s |\n",
			m["heap_max_over_first_min"], m["heap_max_MB"], m["heap_first_min_MB"], yes(m["heap_max_over_first_min"] <= 1.5))
		if p.gcMode == "sample" {
			fmt.Fprintf(&b, "| the same after a second GC (pool caches released) | %.2fx (%.0f of %.0f MB) | %s |\n",
				m["heap2_max_over_first_min"], m["heap2_max_MB"], m["heap2_first_min_MB"], yes(m["heap2_max_over_first_min"] <= 1.5))
		}
		for _, k := range []string{"rss", "rss_held", "goroutines", "fds"} {
			v := m[k+"_slope_pct_per_h"]
			verdict := yes(v < 1)
			if p.dur < 20*time.Minute {
				verdict = "n/a (run under 20 min)"
			}
			if k == "rss_held" && p.gcMode != "sample" {
				// Without a forced GC before each reading, the
				// heap in use includes garbage awaiting the next
				// GC: a figure of where the GC cycle stood, not a
				// target.
				verdict = "diagnostic only (garbage awaiting the GC counts as held)"
			}
			what := k
			if k == "rss" || k == "rss_held" {
				what += " (10 s means)"
			}
			fmt.Fprintf(&b, "| %s slope < 1 %%/h (last 15 min) | %.2f %%/h | %s |\n", what, v, verdict)
		}
	}
	if p.restart {
		fmt.Fprintf(&b, "| all sessions back within 30 s | %.1f s | %s |\n", m["restart_back_s"], yes(m["restart_back_s"] >= 0 && m["restart_back_s"] <= 30))
		fmt.Fprintf(&b, "| probe p99 < 50 ms within 40 s | from %.0f s | %s |\n", m["restart_probe_p99_ok_after_s"],
			yes(m["restart_probe_p99_ok_after_s"] >= 0 && m["restart_probe_p99_ok_after_s"] <= 40))
	}
	// Every interval over the probe bound, with what the server and the
	// probe saw: a slow way in with the server idle and its scheduling
	// prompt, while the load generator sent less, is not the server's.
	var spikes []soakRow
	for _, r := range rows {
		if r.ProbeP99 > 50 {
			spikes = append(spikes, r)
		}
	}
	if len(spikes) > 0 {
		b.WriteString("\nIntervals with probe p99 > 50 ms (in/out: the round trip split at the server's callback; sched: Go scheduling latency; runq: the kernel's wait for a CPU, % of the interval summed over threads; sent: the load generator's messages in the interval, 100 % = one per session per second):\n\n")
		b.WriteString("| t (s) | probe p99 / max ms | in / out p99 ms | server CPU % | server sched max ms | server runq % | GC pause max ms | probe sched max ms | probe runq % | sent % | timer flushes/s | overload drops | kernel drops server / load | probe retrans | burn |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range spikes {
			fmt.Fprintf(&b, "| %.0f | %.1f / %.1f | %.1f / %.1f | %.0f | %.1f | %.0f | %.1f | %.1f | %.0f | %.0f | %.0f | %d | %d / %d | %d | %v |\n",
				r.T, r.ProbeP99, r.ProbeMax, r.ProbeInP99, r.ProbeOutP99, r.CPUPct, r.SchedMax, r.RunDelayPct, r.GCPauseMax,
				r.ProbeSchedMax, r.ProbeRunDelay, 100*float64(r.Sent)/max(float64(p.n)*p.every.Seconds(), 1), r.TimerFlushesPS, r.Drops.Overload, r.KernelDropsSrv, r.KernelDropsLoad, r.ProbeRetrans, r.Burn)
		}
	}
	b.WriteString("\n| figure | value |\n|---|---|\n")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %.3f |\n", k, m[k])
	}
	return os.WriteFile(filepath.Join(p.out, name+"-summary.md"), []byte(b.String()), 0o644)
}

// soakKernelDrops reads the kernel's receive-buffer drops of the soak
// server's socket (addr) and of the load generators' (127.0.0.2 up to
// 127.0.0.(1+loads)).
func soakKernelDrops(addr string, loads int) (server, load int64) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return 0, 0
	}
	sip := ap.Addr().As4()
	server = udpDrops(func(ip [4]byte, port uint16) bool { return ip == sip && port == ap.Port() })
	load = udpDrops(func(ip [4]byte, _ uint16) bool {
		return ip[0] == 127 && ip[1] == 0 && ip[2] == 0 && ip[3] >= 2 && int(ip[3]) < 2+loads
	})
	return server, load
}

// rssMeter reads the soak server's RSS and held RSS (RSS less the free
// heap pages not yet returned, runtime/metrics' heap "free" class) every
// tick in its own goroutine; take returns their means since the last take.
type rssMeter struct {
	mu         sync.Mutex
	sum, sum2  int64
	n          int64
	done       chan struct{}
	stopped    chan struct{}
	freeSample []metrics.Sample
}

func startRSSMeter(every time.Duration) *rssMeter {
	m := &rssMeter{done: make(chan struct{}), stopped: make(chan struct{}),
		freeSample: []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}}
	go func() {
		defer close(m.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
				m.read()
			}
		}
	}()
	return m
}

func (m *rssMeter) read() {
	r := rss()
	metrics.Read(m.freeSample)
	var free int64
	if v := m.freeSample[0].Value; v.Kind() == metrics.KindUint64 {
		free = int64(v.Uint64())
	}
	m.mu.Lock()
	m.sum += r
	m.sum2 += r - free
	m.n++
	m.mu.Unlock()
}

// take returns the means since the last take (a reading now if there was
// none) and starts over.
func (m *rssMeter) take() (rssMean, rss2Mean int64) {
	m.mu.Lock()
	n := m.n
	m.mu.Unlock()
	if n == 0 {
		m.read()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rssMean, rss2Mean = m.sum/m.n, m.sum2/m.n
	m.sum, m.sum2, m.n = 0, 0, 0
	return rssMean, rss2Mean
}

func (m *rssMeter) stop() {
	close(m.done)
	<-m.stopped
}
