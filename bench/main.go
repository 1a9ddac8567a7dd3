// Command bench runs uxp, kcp-go, quic-go, TCP and raw UDP through the same
// scenarios, each case with its client and server in separate processes,
// and writes results.md and results.json.
//
//	cd bench && go run .           # full run (about 10 minutes)
//	cd bench && go run . -quick    # smoke run (well under a minute)
//
// The binary plays three roles. Without -role it is the orchestrator: it
// re-executes itself as "-role server" and "-role client" children, talks
// to the server over its stdin/stdout (READY, MARK, STATS, QUIT), and reads
// each client's JSON result from its stdout. Cases are repeated and
// interleaved (rep 1 of every system, then rep 2, ...) so that drift in the
// machine's load spreads over all of them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// options are the command line; children get the fields they need.
type options struct {
	role      string // "", "server", "client"
	quick     bool
	out       string
	only      string // comma-separated scenario filter
	systems   string // comma-separated system filter
	reps      int
	sys       string
	scen      string
	addr      string
	key       string
	fec       string
	n         int
	par       int
	size      int
	rate      float64
	dur       time.Duration
	grace     time.Duration
	procs     int
	noNetns   bool
	scaleNs   string
	gameDur   time.Duration
	profile   string
	profEvery string
	profDir   string
	bind      string

	// Soak (soak.go).
	soakDur     time.Duration
	burn        time.Duration
	rekey       time.Duration
	churn       float64
	garbage     int
	privKey     string
	sockBuf     int
	gcMode      string
	sampleEvery time.Duration
	loss        float64
	idle        bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&o.role, "role", "", "internal: server or client (the orchestrator starts these)")
	fs.BoolVar(&o.quick, "quick", false, "smoke mode: one short repetition of each case, 1k sessions only")
	fs.StringVar(&o.out, "out", ".", "directory for results.md and results.json")
	fs.StringVar(&o.only, "scenarios", "", "comma-separated scenarios to run (bulk,rr,loss,game,scale,handshake,bottleneck,bottleneck-vs-tcp,bottleneck-loss,soak,restart); empty runs all but soak and restart (which -quick includes, short)")
	fs.StringVar(&o.systems, "systems", "", "comma-separated systems to run; empty runs all")
	fs.IntVar(&o.reps, "reps", 0, "repetitions per case; 0 means 3 (1 with -quick)")
	fs.StringVar(&o.scaleNs, "sessions", "", "comma-separated session counts for the scale scenario; empty means 1000,10000,50000 (1000 with -quick)")
	fs.BoolVar(&o.noNetns, "no-netns", false, "skip the loss, game and bottleneck scenarios (need root, ip, nft and tc)")
	fs.DurationVar(&o.gameDur, "game-duration", 0, "game scenario: measured time of each case; 0 means 10s (3s with -quick). At 60 ticks a second, the p99 of 10 s is the 6th-worst of 600 round trips: longer runs steady it for A/B comparisons")
	fs.DurationVar(&o.soakDur, "duration", 0, "soak scenario: how long it runs; 0 means 20m (90s with -quick)")
	fs.DurationVar(&o.burn, "burn", 0, "soak scenario: burn one core for this long in the middle of the run")
	fs.Float64Var(&o.loss, "loss", 0, "soak scenario: fraction of datagrams the load generators drop, each way")
	fs.BoolVar(&o.idle, "idle", false, "soak scenario: sessions send no messages (heartbeats and rekeys only)")
	fs.StringVar(&o.profEvery, "profile-intervals", "", "soak scenario: write a server CPU profile of every sampling interval into `DIR`")
	fs.StringVar(&o.profDir, "profile", "", "write a CPU profile of every uxp server child (from MARK on) into `DIR`")
	// Child flags.
	fs.StringVar(&o.sys, "sys", "", "internal: system under test")
	fs.StringVar(&o.scen, "scen", "", "internal: client scenario")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "internal: address to listen on or dial")
	fs.StringVar(&o.key, "key", "", "internal: server public key (uxp)")
	fs.StringVar(&o.fec, "fec", "off", "internal: uxp FEC mode off, fixed or adaptive")
	fs.IntVar(&o.n, "n", 0, "internal: request count or session count")
	fs.IntVar(&o.par, "par", 1, "internal: parallel handshakers")
	fs.IntVar(&o.size, "size", 1024, "internal: message size")
	fs.Float64Var(&o.rate, "rate", 0, "internal: open-loop requests per second")
	fs.DurationVar(&o.dur, "dur", time.Second, "internal: measured duration")
	fs.DurationVar(&o.grace, "grace", 2*time.Second, "internal: wait for late replies")
	fs.IntVar(&o.procs, "procs", 0, "internal: GOMAXPROCS for the child")
	fs.DurationVar(&o.rekey, "rekey", 0, "soak scenario: RekeyAfterTime; 0 means the issue's 30s (15s with -quick), negative uxp's default (2 min); also passed to the soak's children")
	fs.Float64Var(&o.churn, "churn", 0, "internal: fraction of sessions replaced per second (soak)")
	fs.IntVar(&o.garbage, "garbage", 0, "internal: garbage datagrams per second (soak)")
	fs.StringVar(&o.privKey, "privkey", "", "internal: server private key (soak server)")
	fs.IntVar(&o.sockBuf, "sockbuf", 32<<20, "soak and restart scenarios: force every soak socket's receive and send buffers to this many `bytes` (SO_RCVBUFFORCE, as root; 0: uxp's 4 MiB default, capped by net.core.rmem_max)")
	fs.StringVar(&o.gcMode, "gc", "runtime", "soak and restart scenarios: how the server's live heap is read each interval: `runtime` (the live heap the runtime's own last GC marked, /gc/heap/live:bytes; the GC runs on its own schedule, as in production) or sample (a forced GC per sample, and a second one every minute)")
	fs.DurationVar(&o.sampleEvery, "every", 10*time.Second, "internal: soak sampling interval")
	fs.StringVar(&o.bind, "bind", "", "internal: local IP a load generator binds its sockets to")
	fs.StringVar(&o.profile, "cpuprofile", "", "internal: write a CPU profile of this child to `file` (a server: from MARK on)")
	_ = fs.Parse(os.Args[1:])
	if o.profile != "" && o.role != "server" { // a server profiles from MARK on
		f, err := os.Create(o.profile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.role {
	case "":
		err = orchestrate(ctx, &o)
	case "server":
		err = serverRole(ctx, &o)
	case "soakserver":
		err = soakServerRole(ctx, &o)
	case "burn":
		err = burnRole()
	case "client":
		err = clientRole(ctx, &o)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", o.role, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var r []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			r = append(r, f)
		}
	}
	return r
}
