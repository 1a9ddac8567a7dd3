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
)

// tunnelClientCommand implements `uxp tunnel client`.
func tunnelClientCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("uxp tunnel client", "uxp tunnel client -listen 127.0.0.1:2222 -server HOST:4000 -server-key BASE64 -psk-file FILE", stderr)
	listen := fs.String("listen", "127.0.0.1:2222", "TCP `address` to accept connections on")
	server := fs.String("server", "", "uxp tunnel server `host:port` (required)")
	serverKey := fs.String("server-key", "", "the server's base64 public key to pin (it is not secret); default $"+envTunnelServerKey)
	serverKeyFile := fs.String("server-key-file", "", "`FILE` holding the server's base64 public key")
	pskFile := fs.String("psk-file", "", "`FILE` holding the base64 pre-shared key the server requires; default $"+envTunnelPSK)
	clientKeyFile := fs.String("client-key", "", "`FILE` holding this client's base64 private key, for a server with -allow-client-keys; default $"+envTunnelClientKey)
	var tune tunnelTuning
	tuningFlags(fs, &tune)
	fs.StringVar(&tune.metrics, "metrics", "", "serve the client session's Prometheus metrics at http://`ADDR`/metrics (keep it internal)")
	set, err := parseTunnelFlags(fs, args)
	if err != nil {
		return err
	}
	if *server == "" {
		fmt.Fprintln(stderr, "-server is required")
		fs.Usage()
		return &usageError{errors.New("-server is required")}
	}
	cfg, err := tune.config(set)
	if err != nil {
		return err
	}
	pub, err := loadPublicKey(*serverKey, *serverKeyFile, os.Getenv)
	if err != nil {
		return err
	}
	cfg.ServerPublicKey = pub
	psk, hasPSK, err := loadPSK(*pskFile, os.Getenv)
	if err != nil {
		return err
	}
	cfg.Identity.PresharedKey = psk
	ck, hasKey, err := loadClientKey(*clientKeyFile, os.Getenv)
	if err != nil {
		return err
	}
	cfg.Identity.ClientPrivateKey = ck
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := newTunnelLogger(stderr)
	addr := *server
	c := newTunnelClient(ln, func(ctx context.Context) (net.Conn, error) {
		return uxp.DialConn(ctx, addr, cfg)
	}, log)
	c.smux = tune.smux()
	c.stats = time.Duration(tune.statsInterval) * time.Second
	if tune.metrics != "" {
		maddr, stop, err := serveMetrics(tune.metrics, clientMetricsHandler(c), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		log.Info("tunnel: metrics", "url", "http://"+maddr.String()+"/metrics")
	}
	attrs := []any{"addr", ln.Addr().String(), "server", addr, "psk", hasPSK,
		"mode", tune.mode, "fec", tune.fec, "cipher", cipherName(cfg.Cipher), "mtu", tune.mtu, "sndwnd", tune.sndWnd, "rcvwnd", tune.rcvWnd}
	if hasKey {
		cpub, _ := ck.PublicKey()
		attrs = append(attrs, "client_key", cpub.String())
	}
	log.Info("tunnel client listening", attrs...)
	return c.serve(ctx)
}

// errTunnelStopping is what a connection accepted just before shutdown
// gets instead of a new uxp session.
var errTunnelStopping = errors.New("tunnel client is shutting down")

// tunnelClient accepts TCP connections and forwards each as one smux
// stream over a shared uxp session, which it (re)dials when needed.
type tunnelClient struct {
	ln    net.Listener
	dial  func(ctx context.Context) (net.Conn, error)
	log   *slog.Logger
	smux  *smux.Config  // nil means smuxConfig()
	stats time.Duration // period of the stats log; zero: none
	conns connSet       // forwarded TCP connections
	wg    sync.WaitGroup
	ids   atomic.Uint64 // numbers forwarded connections in log lines

	// dialMu serialises dialling, so that connections arriving together
	// share one new session. It is not held with mu, and shutdown never
	// waits for it: a dial in flight is cancelled through its context.
	dialMu sync.Mutex

	mu       sync.Mutex // guards sess, conn and stopping
	sess     *smux.Session
	conn     net.Conn // the uxp stream under sess
	stopping bool     // serve is shutting down: no new session
}

func newTunnelClient(ln net.Listener, dial func(ctx context.Context) (net.Conn, error), log *slog.Logger) *tunnelClient {
	return &tunnelClient{ln: ln, dial: dial, log: log}
}

// serve runs until ctx is cancelled or the listener fails, then closes
// the listener, every forwarded connection and the uxp session, and waits
// for its goroutines.
func (c *tunnelClient) serve(ctx context.Context) error {
	// The connections' context ends with serve, so a dial still in
	// flight when the listener fails is cancelled too.
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.ln.Close() })
	defer stop()
	c.wg.Go(func() {
		statsLoop(connCtx, c.stats, func() { logConnStats(c.log, c.current()) })
	})
	var err error
	for {
		var tcp net.Conn
		tcp, err = c.ln.Accept()
		if err != nil {
			break
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.handle(connCtx, tcp)
		}()
	}
	c.ln.Close()
	cancel()
	c.conns.closeAll()
	// From here on no handle goroutine may install a session: one that
	// did would live on, and its watcher would keep wg.Wait from ever
	// returning.
	c.mu.Lock()
	c.stopping = true
	if c.sess != nil {
		c.sess.Close()
		c.conn.Close()
		c.sess, c.conn = nil, nil
	}
	c.mu.Unlock()
	c.wg.Wait()
	if ctx.Err() != nil {
		c.log.Info("tunnel client stopped")
		return nil
	}
	return err
}

func (c *tunnelClient) handle(ctx context.Context, tcp net.Conn) {
	id := c.ids.Add(1)
	if !c.conns.add(tcp) {
		return
	}
	defer c.conns.remove(tcp)
	st, err := c.openStream(ctx)
	if err != nil {
		c.log.Warn("tunnel: no uxp session; dropping connection", "conn", id, "from", tcp.RemoteAddr().String(), "err", err)
		tcp.Close()
		return
	}
	c.log.Info("tunnel: open", "conn", id, "from", tcp.RemoteAddr().String(), "stream", st.ID())
	// sent = TCP client -> server, received = server -> TCP client.
	forward(c.log, id, tcp, st)
}

// openStream opens a stream on the current session; if the session is
// dead it dials a new one (once) and retries.
func (c *tunnelClient) openStream(ctx context.Context) (*smux.Stream, error) {
	for attempt := 0; ; attempt++ {
		sess, err := c.session(ctx)
		if err != nil {
			return nil, err
		}
		st, err := sess.OpenStream()
		if err == nil {
			return st, nil
		}
		c.drop(sess, err)
		if attempt == 1 {
			return nil, err
		}
	}
}

// session returns the live smux session, dialling a new uxp session if
// there is none. It fails with errTunnelStopping once serve is shutting
// down, even when a dial was already in flight.
func (c *tunnelClient) session(ctx context.Context) (*smux.Session, error) {
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	c.mu.Lock()
	sess, stopping := c.sess, c.stopping
	c.mu.Unlock()
	switch {
	case stopping:
		return nil, errTunnelStopping
	case sess != nil && !sess.IsClosed():
		return sess, nil
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	sc := c.smux
	if sc == nil {
		sc = smuxConfig()
	}
	sess, err = smux.Client(conn, sc)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		sess.Close()
		conn.Close()
		return nil, errTunnelStopping
	}
	c.sess, c.conn = sess, conn
	c.log.Info("tunnel: uxp session up", "server", conn.RemoteAddr().String(), "local", conn.LocalAddr().String())
	// Notice a dead session at once, not only at the next connection.
	// (session runs on a handle goroutine, which wg already counts, and
	// serve closes sess before wg.Wait because stopping was false.)
	if sc, ok := conn.(*uxp.StreamConn); ok {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			select {
			case <-sess.CloseChan():
			case <-sc.Session().Done():
				// When the client is stopping too, nothing is lost: serve
				// closes sess. (ctx is cancelled before the server of a
				// test in the same process can close its side.)
				if ctx.Err() == nil {
					c.drop(sess, sc.Session().Err())
				}
			}
		}()
	}
	return sess, nil
}

// drop forgets sess if it is still the current session, so the next
// connection dials a new one.
func (c *tunnelClient) drop(sess *smux.Session, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != sess {
		return
	}
	if errors.Is(why, uxp.ErrPeerClosed) {
		// The server closed the session on purpose (it shut down, or
		// closed it): not an error of the link.
		c.log.Info("tunnel: uxp session closed by the server; will reconnect")
	} else {
		c.log.Warn("tunnel: uxp session lost; will reconnect", "err", why)
	}
	c.sess.Close()
	c.conn.Close()
	c.sess, c.conn = nil, nil
}

// current is the uxp session under the live smux session, or nil.
func (c *tunnelClient) current() *uxp.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.conn.(*uxp.StreamConn); ok && c.sess != nil && !c.sess.IsClosed() {
		return sc.Session()
	}
	return nil
}
