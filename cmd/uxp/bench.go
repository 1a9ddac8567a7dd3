package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// benchOptions are the knobs of `uxp bench`.
type benchOptions struct {
	serve  string // listen here as a bench server instead of measuring
	addr   string // measure against this bench server; empty starts a local one
	key    string // its public key
	dur    time.Duration
	size   int
	rate   float64
	fec    string
	cipher string
	scen   string
	cc     string // Config.CongestionControl
}

// benchCommand implements `uxp bench`: the uxp scenarios of the bench/
// suite (bulk goodput, closed-loop and open-loop request/response) against
// a bench server, so users can measure their own links. `uxp bench -serve
// :7000` runs the server side (echo and sink) on the far machine and
// prints its key; `uxp bench -addr host:7000 -key KEY` measures against
// it. Without -addr a server runs in-process on loopback.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := benchOptions{dur: 5 * time.Second, size: 1024, rate: 200, fec: "off", cipher: "auto", scen: "bulk,rr,open"}
	fs := flag.NewFlagSet("uxp bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.serve, "serve", "", "run a bench server on `ADDR` (host:port) until interrupted")
	fs.StringVar(&o.addr, "addr", "", "bench server to measure (`HOST:PORT`); empty starts one on loopback")
	fs.StringVar(&o.key, "key", "", "the bench server's public key (printed by -serve)")
	fs.DurationVar(&o.dur, "d", o.dur, "duration of each scenario")
	fs.IntVar(&o.size, "size", o.size, "request size in `bytes` for rr and open")
	fs.Float64Var(&o.rate, "rate", o.rate, "requests per second for open")
	fs.StringVar(&o.fec, "fec", o.fec, "FEC: off, D/P (e.g. 10/3) or adaptive")
	fs.StringVar(&o.cipher, "cipher", o.cipher, "auto (negotiated), aes, chacha20 or salsa20")
	fs.StringVar(&o.cc, "cc", o.cc, "congestion control of both ends (Config.CongestionControl): empty for the library's default, bbr, cubic or none")
	fs.StringVar(&o.scen, "scenarios", o.scen, "comma-separated: bulk (goodput), rr (closed-loop RTT), open (open-loop RTT at -rate)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: uxp bench [flags]\n\nMeasure uxp goodput and round-trip times against a bench server.\nThe cross-system suite (kcp-go, quic-go, TCP, raw UDP) is in bench/.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.size < uxpbench.HeaderSize || o.rate <= 0 || o.dur <= 0 {
		err := fmt.Errorf("-size must be at least %d, -rate and -d positive", uxpbench.HeaderSize)
		fmt.Fprintln(stderr, err)
		return &usageError{err}
	}
	if err := (&uxp.Config{CongestionControl: uxp.CongestionControl(o.cc)}).Validate(); err != nil {
		err = fmt.Errorf("-cc %q: %w", o.cc, err)
		fmt.Fprintln(stderr, err)
		return &usageError{err}
	}
	if o.serve != "" {
		return benchServe(ctx, o.serve, o.cc, stdout)
	}
	addr, key := o.addr, o.key
	if addr == "" {
		srv, pub, err := startBenchServer("127.0.0.1:0", o.cc)
		if err != nil {
			return err
		}
		defer srv.Close()
		addr, key = srv.Addr().String(), pub
	}
	return benchRun(ctx, o, addr, key, stdout)
}

func startBenchServer(addr, cc string) (*uxp.Server, string, error) {
	kp, err := uxp.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, "", err
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, "", err
	}
	cfg := &uxp.Config{
		PrivateKey: kp.Private,
		FEC:        uxp.FECConfig{DataShards: 10, ParityShards: 3, Adaptive: true, MaxParity: 8},

		CongestionControl: uxp.CongestionControl(cc),
	}
	srv, err := uxp.NewServer(pc, uxpbench.NewServer(), cfg)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	if err := srv.Start(); err != nil {
		return nil, "", err
	}
	return srv, kp.Public.String(), nil
}

func benchServe(ctx context.Context, addr, cc string, stdout io.Writer) error {
	srv, pub, err := startBenchServer(addr, cc)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "bench server on %s\nkey: %s\nmeasure with: uxp bench -addr %s -key %s\n", srv.Addr(), pub, srv.Addr(), pub)
	<-ctx.Done()
	return nil
}

func benchRun(ctx context.Context, o benchOptions, addr, key string, stdout io.Writer) error {
	pub, err := uxp.ParsePublicKey(key)
	if err != nil {
		return err
	}
	cipher, err := parseCipher(o.cipher)
	if err != nil {
		return err
	}
	cfg := &uxp.Config{ServerPublicKey: pub, Cipher: cipher, CongestionControl: uxp.CongestionControl(o.cc)}
	switch o.fec {
	case "off", "":
	case "adaptive":
		cfg.FEC = uxp.FECConfig{DataShards: 10, ParityShards: 3, Adaptive: true, MaxParity: 8}
	default:
		var d, p int
		if _, err := fmt.Sscanf(o.fec, "%d/%d", &d, &p); err != nil {
			return fmt.Errorf("-fec %q: want off, D/P or adaptive", o.fec)
		}
		cfg.FEC = uxp.FECConfig{DataShards: d, ParityShards: p}
	}
	cc := o.cc
	if cc == "" {
		cc = "default"
	}
	fmt.Fprintf(stdout, "uxp bench against %s, cipher %v, FEC %s, congestion control %s, %v per scenario\n", addr, cipherName(cipher), o.fec, cc, o.dur)
	for _, scen := range splitComma(o.scen) {
		h := &uxpbench.Client{}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cl, err := uxp.Dial(hctx, addr, h, cfg)
		cancel()
		if err != nil {
			return err
		}
		c := cl.Conn()
		switch scen {
		case "bulk":
			n, d, err := h.Bulk(ctx, c, 16<<10, o.dur)
			if err != nil {
				cl.Close()
				return err
			}
			st := c.Stats()
			fmt.Fprintf(stdout, "bulk:  %.1f MB/s goodput (%d MB in %v), %d retransmissions\n",
				float64(n)/1e6/d.Seconds(), n/1e6, d.Round(time.Millisecond), st.Retransmissions)
		case "rr":
			rtts, err := h.ClosedLoop(ctx, c, o.size, 1<<30, o.dur)
			if err != nil {
				cl.Close()
				return err
			}
			s := summarize(rtts)
			fmt.Fprintf(stdout, "rr:    %d requests of %d B, RTT p50 %v  p99 %v  p99.9 %v  max %v\n",
				s.n, o.size, s.p50, s.p99, permille(rtts, 999), s.max)
		case "open":
			rtts, sent, err := h.OpenLoop(ctx, c, o.size, o.rate, o.dur, 3*time.Second)
			if err != nil {
				cl.Close()
				return err
			}
			s := summarize(rtts)
			st := c.Stats()
			fmt.Fprintf(stdout, "open:  %d/%d requests of %d B at %.0f/s answered, RTT p50 %v  p99 %v  max %v, %.0f wire bytes sent per request\n",
				s.n, sent, o.size, o.rate, s.p50, s.p99, s.max, float64(st.BytesSent)/float64(max(sent, 1)))
		default:
			cl.Close()
			err := fmt.Errorf("unknown scenario %q (want bulk, rr, open)", scen)
			return err
		}
		// The client's controller as the scenario left it: what it
		// learned of the path.
		fmt.Fprintf(stdout, "       cc: %s\n", congestionDetail(c.Stats().Congestion))
		cl.Close()
	}
	return nil
}

// permille returns the nearest-rank p/1000 quantile of sorted (summarize
// sorts its argument), zero if it is empty.
func permille(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 999) / 1000
	return sorted[max(rank, 1)-1]
}

func splitComma(s string) []string {
	var r []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			r = append(r, f)
		}
	}
	return r
}
