package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/netsim"
)

// demoOptions are the knobs of `uxp demo`; demoFlags binds them to flags.
type demoOptions struct {
	clients  int
	messages int     // per client
	size     int     // payload bytes per message; 0 means mixed 16..2000
	rate     float64 // messages per second per client; 0 means unpaced
	window   int     // messages in flight per client
	loss     float64 // per direction
	dup      float64
	reorder  float64
	delay    time.Duration // one way
	jitter   time.Duration
	seed     uint64
	cipher   string
	fec      string // "", "off", "D/P" or "adaptive"
	timeout  time.Duration
	metrics  string        // address for the metrics and debug page; "" means none
	hold     time.Duration // keep the sessions open this long after the traffic

	// onMetrics, when set (by tests), learns the metrics listener's address.
	onMetrics func(net.Addr)
}

func defaultDemoOptions() demoOptions {
	return demoOptions{
		clients:  32,
		messages: 200,
		rate:     100,
		window:   128,
		loss:     0.05,
		dup:      0.01,
		reorder:  0.02,
		delay:    20 * time.Millisecond,
		jitter:   5 * time.Millisecond,
		seed:     1,
		cipher:   "auto",
		timeout:  60 * time.Second,
	}
}

func demoFlags(fs *flag.FlagSet, o *demoOptions) {
	fs.IntVar(&o.clients, "clients", o.clients, "number of clients")
	fs.IntVar(&o.messages, "messages", o.messages, "messages each client sends")
	fs.IntVar(&o.size, "size", o.size, "payload `bytes` per message; 0 mixes sizes from 16 to 2000 (bigger than one packet)")
	fs.Float64Var(&o.rate, "rate", o.rate, "messages per second per client; 0 sends as fast as the window allows")
	fs.IntVar(&o.window, "window", o.window, "most messages a client has in flight (sent, not yet echoed)")
	fs.Float64Var(&o.loss, "loss", o.loss, "packet loss probability, each direction")
	fs.Float64Var(&o.dup, "dup", o.dup, "packet duplication probability, each direction")
	fs.Float64Var(&o.reorder, "reorder", o.reorder, "probability that a packet is held back and overtaken, each direction")
	fs.DurationVar(&o.delay, "delay", o.delay, "one-way delay")
	fs.DurationVar(&o.jitter, "jitter", o.jitter, "random extra one-way delay, up to this")
	fs.Uint64Var(&o.seed, "seed", o.seed, "seed for the impairment and the payloads")
	fs.StringVar(&o.cipher, "cipher", o.cipher, "data cipher: auto (negotiated), aes, chacha20 or salsa20")
	fs.StringVar(&o.fec, "fec", o.fec, "forward error correction: off, DATA/PARITY (e.g. 10/3), or adaptive (10 data, up to 6 parity)")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "overall time limit (-hold comes on top)")
	fs.StringVar(&o.metrics, "metrics", o.metrics, "serve Prometheus metrics at http://`ADDR`/metrics and the session table at /debug/uxp while the demo runs (e.g. :9100)")
	fs.DurationVar(&o.hold, "hold", o.hold, "after the traffic, keep the sessions open (heartbeats only) this long, e.g. to look at -metrics in a browser; Ctrl-C ends it early")
}

func (o *demoOptions) impairment() netsim.Impairment {
	return netsim.Impairment{Loss: o.loss, Duplicate: o.dup, Reorder: o.reorder, Delay: o.delay, Jitter: o.jitter}
}

// cipherName is c's name, or "auto" for none pinned (negotiated).
func cipherName(c uxp.Cipher) string {
	if c == 0 {
		return "auto"
	}
	return c.String()
}

func parseCipher(s string) (uxp.Cipher, error) {
	switch s {
	case "auto", "":
		return 0, nil // negotiated: AES-256-GCM when both ends have AES instructions
	case "aes", "aes256gcm", "aes-256-gcm":
		return uxp.AES256GCM, nil
	case "chacha20", "chacha20poly1305":
		return uxp.ChaCha20Poly1305, nil
	case "salsa20", "salsa20poly1305":
		return uxp.Salsa20Poly1305, nil
	}
	return 0, fmt.Errorf("unknown cipher %q (want auto, aes, chacha20 or salsa20)", s)
}

func (o *demoOptions) validate() error {
	switch {
	case o.clients < 1:
		return fmt.Errorf("-clients %d: want at least 1", o.clients)
	case o.messages < 1:
		return fmt.Errorf("-messages %d: want at least 1", o.messages)
	case o.size < 0 || o.size > 60000:
		return fmt.Errorf("-size %d: want 0 (mixed) to 60000", o.size)
	case o.rate < 0:
		return fmt.Errorf("-rate %v: want 0 (unpaced) or more", o.rate)
	case o.window < 1:
		return fmt.Errorf("-window %d: want at least 1", o.window)
	case o.timeout <= 0:
		return fmt.Errorf("-timeout %v: want a positive duration", o.timeout)
	case o.hold < 0:
		return fmt.Errorf("-hold %v: want 0 or a positive duration", o.hold)
	}
	if _, err := parseFEC(o.fec); err != nil {
		return fmt.Errorf("-fec: %w", err)
	}
	if _, err := parseCipher(o.cipher); err != nil {
		return fmt.Errorf("-cipher: %w", err)
	}
	if err := o.impairment().Validate(); err != nil {
		return err
	}
	return nil
}

// demoCommand implements `uxp demo`.
func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (bool, error) {
	fs := flag.NewFlagSet("uxp demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := defaultDemoOptions()
	demoFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: uxp demo [flags]

Run a server and many clients in one process over loopback UDP, with both
directions impaired (loss, delay, jitter, reordering, duplication). Each
client sends checksummed, numbered messages; the server echoes them; each
client checks that every echo arrives intact, exactly once and in order.
Exits 0 only if every message of every client did.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return false, err
	}
	return runDemo(ctx, o, stdout, stderr)
}

// demo is the state of one run.
type demo struct {
	opts   demoOptions
	cipher uxp.Cipher
	fec    uxp.FECConfig
	start  time.Time
	stderr io.Writer

	srv     *uxp.Server
	srvPC   *netsim.Conn
	echo    *echoServer
	clients []*demoClient
	rtts    latencies
}

// runDemo runs the demo with o, streams progress to stderr and writes the
// summary to stdout. ok reports whether every message of every client came
// back intact, once and in order; err is for failures to run at all (bad
// options, no sockets), in which case nothing is printed to stdout.
func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (ok bool, err error) {
	if err := o.validate(); err != nil {
		return false, err
	}
	cipher, _ := parseCipher(o.cipher)
	fc, _ := parseFEC(o.fec)
	d := &demo{opts: o, cipher: cipher, fec: fc, stderr: stderr, echo: newEchoServer()}
	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	if err := d.startServer(); err != nil {
		return false, err
	}
	stopMetrics, err := d.serveMetrics()
	if err != nil {
		d.shutdown()
		return false, err
	}
	defer stopMetrics()
	flushStop := make(chan struct{})
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		d.echo.flushLoop(flushStop)
	}()

	d.start = time.Now()
	if err := d.connect(runCtx); err != nil {
		close(flushStop)
		<-flushDone
		d.shutdown()
		return false, err
	}
	d.traffic(runCtx)
	elapsed := time.Since(d.start)
	// Judged before -hold: neither Ctrl-C nor -timeout during the hold
	// fails a run whose traffic completed.
	interrupted, timedOut := ctx.Err() != nil, runCtx.Err() != nil
	d.holdOpen(ctx)
	d.shutdown()
	close(flushStop)
	<-flushDone

	var stopped string
	switch {
	case interrupted:
		stopped = "interrupted"
	case timedOut:
		stopped = fmt.Sprintf("timed out after %v", o.timeout)
	}
	r := d.report(elapsed, stopped)
	r.print(stdout)
	return r.ok(), nil
}

// listenImpaired opens a loopback UDP socket and wraps it so that what it
// sends is impaired. Wrapping both ends impairs both directions.
func listenImpaired(imp netsim.Impairment, seed uint64) (*netsim.Conn, error) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	// uxp sizes the buffers of a *net.UDPConn itself, but it cannot see
	// through the wrapper; 33 sessions on one loopback socket need more
	// than the kernel's default. Errors only mean the kernel's cap applies.
	_ = udp.SetReadBuffer(4 << 20)
	_ = udp.SetWriteBuffer(4 << 20)
	return netsim.Wrap(udp, imp, seed), nil
}

func (d *demo) startServer() error {
	kp, err := uxp.GenerateKey()
	if err != nil {
		return err
	}
	pc, err := listenImpaired(d.opts.impairment(), d.opts.seed)
	if err != nil {
		return fmt.Errorf("server socket: %w", err)
	}
	srv, err := uxp.NewServer(pc, d.echo, &uxp.Config{PrivateKey: kp.Private, Cipher: d.cipher, FEC: d.fec})
	if err != nil {
		pc.Close()
		return err
	}
	if err := srv.Start(); err != nil {
		pc.Close()
		return err
	}
	d.srv, d.srvPC = srv, pc
	return nil
}

// connect creates every client and runs their handshakes concurrently. A
// client whose handshake fails is recorded as failed; only a missing socket
// is an error.
func (d *demo) connect(ctx context.Context) error {
	pub := d.srv.PublicKey()
	var interval time.Duration
	if d.opts.rate > 0 {
		interval = time.Duration(float64(time.Second) / d.opts.rate)
	}
	for i := range d.opts.clients {
		dc := newDemoClient(uint32(i), &d.opts, d.start, &d.rtts)
		// Spread the first sends over one interval so that the clients do
		// not all write in the same instant.
		dc.offset = time.Duration(i) * interval / time.Duration(d.opts.clients)
		// Each socket gets its own seed so the clients' fates differ.
		pc, err := listenImpaired(d.opts.impairment(), d.opts.seed+1+uint64(i))
		if err != nil {
			return fmt.Errorf("client socket: %w", err)
		}
		cl, err := uxp.NewClient(pc, d.srv.Addr(), dc, &uxp.Config{ServerPublicKey: pub, Cipher: d.cipher, FEC: d.fec})
		if err != nil {
			pc.Close()
			return err
		}
		dc.cl, dc.pc = cl, pc
		d.clients = append(d.clients, dc)
	}
	var wg sync.WaitGroup
	for _, dc := range d.clients {
		wg.Go(func() {
			t := time.Now()
			if err := dc.cl.Start(ctx); err != nil {
				dc.fail(fmt.Errorf("handshake: %w", err))
				return
			}
			dc.handshake = time.Since(t)
			dc.ready = true
		})
	}
	wg.Wait()
	return nil
}

// traffic runs the senders and reports progress until every client is done
// or ctx ends.
func (d *demo) traffic(ctx context.Context) {
	sendCtx, stopSenders := context.WithCancel(ctx)
	var senders sync.WaitGroup
	for _, dc := range d.clients {
		if dc.ready {
			senders.Go(func() { dc.sendLoop(sendCtx, dc.cl.Conn()) })
		}
	}
	// allDone closes when every client is done, or when ctx ends.
	allDone := make(chan struct{})
	go func() {
		defer close(allDone)
		for _, dc := range d.clients {
			select {
			case <-dc.done:
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-allDone:
			done = true
		case <-tick.C:
			d.progress()
		}
	}
	stopSenders()
	senders.Wait()
}

// progress prints one line of live counters to stderr.
func (d *demo) progress() {
	var sent, recv, retrans, blocked uint64
	var cc []uxp.CongestionStats
	for _, dc := range d.clients {
		sent += dc.sent.Load()
		recv += dc.recv.Load()
		blocked += dc.wouldBlock.Load()
		if dc.ready {
			cs := dc.cl.Conn().Stats()
			retrans += cs.Retransmissions
			cc = append(cc, cs.Congestion)
		}
	}
	st := d.srv.Stats()
	retrans += st.Retransmissions
	fmt.Fprintf(d.stderr, "t=%ds sent=%d recv=%d inflight=%d retrans=%d wouldblock=%d sessions=%d%s\n",
		int(time.Since(d.start).Round(time.Second)/time.Second), sent, recv, sent-recv, retrans, blocked+d.echo.retries.Load(), st.Sessions,
		progressCongestion(cc))
}

// progressCongestion is the progress line's congestion part: the clients'
// median view (congestionSummary), or nothing before a client is ready.
func progressCongestion(cc []uxp.CongestionStats) string {
	if len(cc) == 0 {
		return ""
	}
	return " | clients' median: " + congestionLine(congestionSummary(cc))
}

// shutdown closes the clients (concurrently: each Close may linger to
// deliver what it still holds), then the server, then the impaired sockets
// (already closed by their owners; closing again is a no-op that makes sure
// even a client that never started is released).
func (d *demo) shutdown() {
	var wg sync.WaitGroup
	for _, dc := range d.clients {
		dc.stopping.Store(true)
		wg.Go(func() {
			if err := dc.cl.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(d.stderr, "client %d: close: %v\n", dc.id, err)
			}
			dc.pc.Close()
		})
	}
	wg.Wait()
	if d.srv != nil {
		d.srv.Close()
		d.srvPC.Close()
	}
}

// parseFEC reads the -fec flag.
func parseFEC(s string) (uxp.FECConfig, error) {
	switch s {
	case "", "off":
		return uxp.FECConfig{}, nil
	case "adaptive":
		return uxp.FECConfig{DataShards: 10, ParityShards: 3, MaxParity: 6, Adaptive: true}, nil
	}
	var d, p int
	if n, err := fmt.Sscanf(s, "%d/%d", &d, &p); err != nil || n != 2 {
		return uxp.FECConfig{}, fmt.Errorf("%q is not off, adaptive or DATA/PARITY", s)
	}
	fc := uxp.FECConfig{DataShards: d, ParityShards: p, MaxParity: p}
	if err := (&uxp.Config{FEC: fc}).Validate(); err != nil {
		return uxp.FECConfig{}, err
	}
	return fc, nil
}
