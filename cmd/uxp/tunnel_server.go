package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/smux"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/metrics"
)

// defaultMaxStreams bounds the concurrent smux streams, and so the TCP
// connections to the target, of one uxp session by default.
const defaultMaxStreams = 256

// tunnelServerCommand implements `uxp tunnel server`.
func tunnelServerCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("uxp tunnel server", "uxp tunnel server -listen :4000 -target 127.0.0.1:22 -key FILE -psk-file FILE", stderr)
	listen := fs.String("listen", ":4000", "UDP `address` to accept uxp sessions on")
	target := fs.String("target", "", "TCP `address` every forwarded connection is dialled to (required)")
	keyFile := fs.String("key", "", "`FILE` holding the server's base64 private key (uxp keygen -private-out); default $"+envTunnelKey)
	pskFile := fs.String("psk-file", "", "`FILE` holding the base64 pre-shared key clients must also hold (uxp keygen -private-out); default $"+envTunnelPSK)
	allowFile := fs.String("allow-client-keys", "", "`FILE` listing the base64 public keys of the clients allowed in, one per line")
	insecure := fs.Bool("insecure-anonymous", false, "accept clients with neither the pre-shared key nor an allowed key: anyone who knows the server's public key can reach -target")
	maxStreams := fs.Int("max-streams", defaultMaxStreams, "most concurrent forwarded connections per uxp session; more are refused")
	var tune tunnelTuning
	tuningFlags(fs, &tune)
	fs.StringVar(&tune.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (keep it internal)")
	set, err := parseTunnelFlags(fs, args)
	if err != nil {
		return err
	}
	if *target == "" {
		fmt.Fprintln(stderr, "-target is required")
		fs.Usage()
		return &usageError{errors.New("-target is required")}
	}
	if *maxStreams < 1 {
		fmt.Fprintln(stderr, "-max-streams must be at least 1")
		return &usageError{fmt.Errorf("-max-streams %d: must be at least 1", *maxStreams)}
	}
	cfg, err := tune.config(set)
	if err != nil {
		return err
	}
	key, err := loadPrivateKey(*keyFile, os.Getenv)
	if err != nil {
		return err
	}
	cfg.PrivateKey = key
	psk, _, err := loadPSK(*pskFile, os.Getenv)
	if err != nil {
		return err
	}
	cfg.Identity.PresharedKey = psk
	if *allowFile != "" {
		if cfg.Identity.AllowedClientKeys, err = loadAllowedKeys(*allowFile); err != nil {
			return err
		}
	}
	log := newTunnelLogger(stderr)
	opts := tunnelServerOptions{target: *target, maxStreams: *maxStreams, insecureAnonymous: *insecure,
		smux: tune.smux(), statsInterval: time.Duration(tune.statsInterval) * time.Second}
	// Refuse before binding the port.
	if err := checkClientAuth(&cfg.Identity, opts.insecureAnonymous, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	s, err := newTunnelServer(pc, cfg, opts, log)
	if err != nil {
		pc.Close()
		return err
	}
	if tune.metrics != "" {
		addr, stop, err := serveMetrics(tune.metrics, metrics.MetricsHandler(s.ln.Server(), nil), log)
		if err != nil {
			s.ln.Close()
			return err
		}
		defer stop()
		log.Info("tunnel: metrics", "url", "http://"+addr.String()+"/metrics")
	}
	pub, _ := key.PublicKey()
	log.Info("tunnel server listening", "addr", s.ln.Addr().String(), "target", *target, "public_key", pub.String(),
		"psk", psk != [uxp.KeySize]byte{}, "allowed_client_keys", len(cfg.Identity.AllowedClientKeys), "max_streams", *maxStreams,
		"mode", tune.mode, "fec", tune.fec, "cipher", cipherName(cfg.Cipher), "mtu", tune.mtu, "sndwnd", tune.sndWnd, "rcvwnd", tune.rcvWnd)
	return s.serve(ctx)
}

// tunnelServerOptions are the tunnel server's own settings.
type tunnelServerOptions struct {
	target            string        // TCP address every stream is forwarded to
	maxStreams        int           // concurrent streams per uxp session; must be positive
	insecureAnonymous bool          // accept a Config without client authentication
	smux              *smux.Config  // nil means smuxConfig()
	statsInterval     time.Duration // the stats log's period; zero turns it off
}

// tunnelServer accepts uxp sessions, runs an smux server on each, and
// forwards every smux stream to the target over TCP.
type tunnelServer struct {
	ln         *uxp.Listener
	target     string
	maxStreams int
	smux       *smux.Config
	stats      time.Duration // period of the stats log; zero: none
	log        *slog.Logger
	conns      connSet // smux sessions and forwarded TCP connections
	wg         sync.WaitGroup
	ids        atomic.Uint64 // numbers forwarded connections in log lines
}

// tunnelShutdownWait bounds how long serve waits, once it stops, for the
// uxp sessions to deliver what they hold and close. /* Implementation
// constant */
const tunnelShutdownWait = 5 * time.Second

// newTunnelServer listens on pc. It refuses a cfg.Identity without a
// pre-shared key or allowed client keys unless opts.insecureAnonymous is
// set (then it logs a warning).
func newTunnelServer(pc net.PacketConn, cfg *uxp.Config, opts tunnelServerOptions, log *slog.Logger) (*tunnelServer, error) {
	if opts.maxStreams < 1 {
		return nil, fmt.Errorf("tunnel server: max streams %d: must be at least 1", opts.maxStreams)
	}
	if err := checkClientAuth(&cfg.Identity, opts.insecureAnonymous, log); err != nil {
		return nil, err
	}
	ln, err := uxp.Listen(pc, cfg)
	if err != nil {
		return nil, err
	}
	sc := opts.smux
	if sc == nil {
		sc = smuxConfig()
	}
	return &tunnelServer{ln: ln, target: opts.target, maxStreams: opts.maxStreams, smux: sc, stats: opts.statsInterval, log: log}, nil
}

// serve runs until ctx is cancelled (or the socket fails), then closes
// every session and connection and waits for its goroutines.
func (s *tunnelServer) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	statsCtx, stopStats := context.WithCancel(ctx)
	s.wg.Go(func() {
		statsLoop(statsCtx, s.stats, func() { logServerStats(s.log, s.ln.Server().Stats()) })
	})
	var err error
	for {
		var c net.Conn
		c, err = s.ln.Accept()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
		}()
	}
	s.ln.Close()
	stopStats()
	s.conns.closeAll()
	s.wg.Wait()
	// Listener.Close leaves the sessions to end by themselves (they
	// deliver what was written, then tell the client); wait for that, a
	// bounded time, so that the server has stopped when serve returns.
	sctx, cancel := context.WithTimeout(context.Background(), tunnelShutdownWait)
	s.ln.Shutdown(sctx)
	cancel()
	if ctx.Err() != nil {
		s.log.Info("tunnel server stopped")
		return nil
	}
	return err
}

// session serves one uxp session: each smux stream is one forwarded TCP
// connection.
func (s *tunnelServer) session(c net.Conn) {
	peer := c.RemoteAddr().String()
	sess, err := smux.Server(c, s.smux)
	if err != nil {
		c.Close()
		return
	}
	if !s.conns.add(sess) {
		return
	}
	defer s.conns.remove(sess)
	defer sess.Close()
	attrs := []any{"peer", peer}
	if uc, ok := c.(*uxp.StreamConn); ok {
		if k, ok := uc.Session().PeerKey(); ok {
			attrs = append(attrs, "client_key", k.String())
		}
	}
	s.log.Info("tunnel: uxp session up", attrs...)
	// active holds one token per live stream of this session: a stream
	// beyond maxStreams is closed at once, so that one client cannot make
	// the server hold unbounded streams and TCP connections to the target.
	active := make(chan struct{}, s.maxStreams)
	var refused int
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			attrs := []any{"peer", peer, "refused_streams", refused}
			// smux reports a session closed by either end, shutdown
			// included, as io.ErrClosedPipe: that is no error.
			if !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, net.ErrClosed) {
				attrs = append(attrs, "err", err)
			}
			s.log.Info("tunnel: uxp session down", attrs...)
			return
		}
		select {
		case active <- struct{}{}:
		default:
			// Logged once per session: the peer is authenticated, but
			// it should not be able to flood the log either.
			if refused++; refused == 1 {
				s.log.Warn("tunnel: stream limit reached; refusing streams", "peer", peer, "max_streams", s.maxStreams)
			}
			st.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-active }()
			s.stream(st, peer)
		}()
	}
}

func (s *tunnelServer) stream(st *smux.Stream, peer string) {
	id := s.ids.Add(1)
	tcp, err := net.DialTimeout("tcp", s.target, tunnelDialTimeout)
	if err != nil {
		s.log.Warn("tunnel: dialling target failed", "conn", id, "peer", peer, "target", s.target, "err", err)
		st.Close()
		return
	}
	if !s.conns.add(tcp) {
		st.Close()
		return
	}
	defer s.conns.remove(tcp)
	s.log.Info("tunnel: open", "conn", id, "peer", peer, "target", s.target)
	// sent = target -> tunnel client, received = tunnel client -> target.
	forward(s.log, id, tcp, st)
}
