package uxp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/sockio"
	"github.com/uxp-go/uxp/internal/wire"
)

// Client is one session to a uxp server. Create it with NewClient (on your
// own PacketConn) or Dial (which opens a socket), then call Start. All
// methods are safe for concurrent use.
type Client struct {
	dialSide // the endpoint events only a server acts on

	set     *settings
	handler ConnHandler
	server  netip.AddrPort
	ep      *endpoint
	tr      tracer

	cookieKey [32]byte // immutable
	hstats    handshakeCounters
	at        *clientAttempt

	mu      sync.Mutex
	started bool
	closed  bool
}

/* Implementation constants */
const (
	firstRetransmit = 250 * time.Millisecond
	maxRetransmit   = time.Second
)

// NewClient prepares a client that will reach the server at server over pc.
// cfg must hold the server's public key (Config.ServerPublicKey). handler
// receives the session's events; nil means NopHandler. The Client owns pc
// from Start on and closes it in Close.
func NewClient(pc net.PacketConn, server net.Addr, handler ConnHandler, cfg *Config) (*Client, error) {
	set, err := clientSettings("NewClient", pc, cfg)
	if err != nil {
		return nil, err
	}
	ap := sockio.AddrPort(server)
	if !ap.IsValid() || ap.Port() == 0 {
		return nil, fmt.Errorf("uxp: NewClient: server address %v is not a UDP address", server)
	}
	if handler == nil {
		handler = NopHandler{}
	}
	c := &Client{
		set:       set,
		handler:   handler,
		server:    ap,
		cookieKey: handshake.LabelKey(handshake.CookieLabel, set.serverPublicKey),
		tr:        newTracer(set.tracer, true),
	}
	c.ep = newEndpoint(pc, set, 1, c)
	c.at = newClientAttempt(set, c.ep, ap, handler, &c.tr, &c.cookieKey, &c.hstats)
	return c, nil
}

// Dial opens a UDP socket, connects to the server at addr ("host:port")
// and returns once the session is ready (OnReady has run) or has failed.
// cfg must hold the server's public key.
func Dial(ctx context.Context, addr string, handler ConnHandler, cfg *Config) (*Client, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("uxp: dial %s: %w", addr, err)
	}
	pc, err := dialUDP(raddr)
	if err != nil {
		return nil, fmt.Errorf("uxp: dial %s: %w", addr, err)
	}
	c, err := NewClient(pc, raddr, handler, cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialUDP opens a UDP socket connected to raddr, for Dial and DialConn:
// the kernel then reports an ICMP port unreachable from the server as
// ECONNREFUSED on the socket's next read or write, which fails the
// handshake within a round trip instead of at its timeout (clientAttempt.
// readError). Loss alone still gets the usual retransmissions. Its
// LocalAddr is the source address the kernel routes from, not the
// wildcard.
func dialUDP(raddr *net.UDPAddr) (*net.UDPConn, error) {
	network := "udp4"
	if raddr.IP.To4() == nil {
		network = "udp6"
	}
	return net.DialUDP(network, nil, raddr)
}

// Start runs the handshake: it sends the initiation, retransmits it with
// back-off, and returns nil once the session is established and OnReady
// has returned. It fails with an error matching ErrHandshakeFailed (a
// *HandshakeTimeoutError) when Config.HandshakeTimeout or ctx's deadline
// passes first, and with ctx.Err() if ctx is cancelled. An authenticated
// refusal fails it with ErrServerFull, ErrClientRejected, ErrFECRefused or
// ErrServerShuttingDown. On a socket connected to the server (Dial,
// DialConn), an ICMP port unreachable fails it at once with an error
// matching syscall.ECONNREFUSED.
// A Close during the handshake makes it return ErrConnClosed at once.
// After a failure the Client is closed.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrConnClosed
	}
	if c.started {
		c.mu.Unlock()
		return ErrAlreadyStarted
	}
	c.started = true
	c.mu.Unlock()

	hs, err := c.at.newHandshake(0)
	if err != nil {
		c.Close()
		return err
	}
	if !c.ep.start() {
		// Close ran since the check above.
		return ErrConnClosed
	}
	conn, err := c.at.run(ctx, hs)
	if err != nil && conn == nil {
		c.Close()
	}
	return err
}

// onResponse runs on the read loop.
func (c *Client) onResponse(b []byte, from netip.AddrPort) bool {
	c.at.takeResponse(b, from)
	return true
}

// onControl runs on the read loop for cookie replies and stateless
// resets. It owns bp.
func (c *Client) onControl(bp *packetBuf, n int, from netip.AddrPort) bool {
	if bp.dgram()[0] == wire.MsgReset {
		c.ep.takeReset(bp, n, from, &c.hstats)
		return true
	}
	c.at.takeCookie(bp.dgram()[:n])
	putPacketBuf(bp)
	return true
}

// onReadError runs on the read loop: a client in its handshake fails on
// the first read error (ICMP port unreachable).
func (c *Client) onReadError(err error) { c.at.readError(err) }

// onConnFreed runs on the client's only shard once its session left the
// tables. The client has nothing left to do once its session ended and
// the peer confirmed the close (or draining gave up); stop its goroutines.
// The shard must not wait for itself.
func (c *Client) onConnFreed(*Conn) { c.ep.stopFromShard() }

// Conn returns the session, or nil before Start has succeeded.
func (c *Client) Conn() *Conn { return c.at.conn.Load() }

// Close closes the session (messages already written are still delivered
// while the server acknowledges them, Config.CloseLinger), waits for it to
// end and for the server to confirm the close, stops the client's
// goroutines and closes its PacketConn. So it may wait up to the linger's
// hard cap (60 s by default) for a slow server; do not call it from a
// callback, call Conn().Close there, which returns at once (the Client
// then stops by itself once the session has ended). Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	if conn := c.at.conn.Load(); conn != nil {
		closeAndWait([]*Conn{conn})
	}
	if !started {
		return c.ep.pc.Close()
	}
	c.ep.stop()
	c.ep.wg.Wait()
	return nil
}

// Stats returns the session's counters (zero before Start succeeded), with
// the datagrams the client dropped before they reached the session (stray
// or forged handshake responses) added to Drops.
func (c *Client) Stats() ConnStats {
	var st ConnStats
	if conn := c.at.conn.Load(); conn != nil {
		st = conn.Stats()
	}
	st.Drops.add(c.ep.drops.snapshot())
	st.Handshake = c.hstats.snapshot()
	return st
}
