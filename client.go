package uxp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one session to a uxp server. Create it with NewClient (on your
// own PacketConn) or Dial (which opens a socket), then call Start. All
// methods are safe for concurrent use.
type Client struct {
	set     *settings
	handler ConnHandler
	server  netip.AddrPort
	ep      *endpoint

	hs          atomic.Pointer[clientHandshake] // non-nil while Start waits for a response
	established chan *Conn                      // capacity 1
	refused     chan error                      // capacity 1: an authenticated refusal
	conn        atomic.Pointer[Conn]
	tr          tracer

	// Cookie replies (cookie.go), received on the read loop and used by
	// Start when it (re)sends the initiation.
	cookieKey  [32]byte // immutable
	cookieMu   sync.Mutex
	cookie     [macSize]byte
	cookieAt   time.Time            // zero: none
	cookieCh   chan struct{}        // capacity 1: resend now with mac2
	resetToken [resetTokenSize]byte // written before conn is stored, read by the read loop
	hstats     handshakeCounters

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
	if pc == nil {
		return nil, errors.New("uxp: NewClient: nil PacketConn")
	}
	set, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if set.serverPublicKey.IsZero() {
		return nil, &ConfigError{Field: "ServerPublicKey", Reason: "required for a client"}
	}
	if err := set.serverPublicKey.usable(); err != nil {
		// Caught here, the handshake would fail on every attempt.
		return nil, &ConfigError{Field: "ServerPublicKey", Reason: err.Error()}
	}
	ap := addrPortOf(server)
	if !ap.IsValid() || ap.Port() == 0 {
		return nil, fmt.Errorf("uxp: NewClient: server address %v is not a UDP address", server)
	}
	if handler == nil {
		handler = NopHandler{}
	}
	c := &Client{
		set:         set,
		handler:     handler,
		server:      ap,
		established: make(chan *Conn, 1),
		refused:     make(chan error, 1),
		cookieKey:   labelKey(cookieLabel, set.serverPublicKey),
		cookieCh:    make(chan struct{}, 1),
		tr:          newTracer(set.tracer, true),
	}
	c.ep = newEndpoint(pc, set, 1)
	c.ep.onResponse = c.handleResponse
	c.ep.onControl = c.handleControl
	c.ep.onConnClosed = func(*Conn, error, bool) {
		// The client has nothing left to do; stop its goroutines. This runs
		// on the client's only shard, which must not wait for itself.
		c.ep.stopFromShard()
	}
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
	network := "udp4"
	if raddr.IP.To4() == nil {
		network = "udp6"
	}
	pc, err := net.ListenUDP(network, nil)
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

// Start runs the handshake: it sends the initiation, retransmits it with
// back-off, and returns nil once the session is established and OnReady
// has returned. It fails with an error matching ErrHandshakeFailed (a
// *HandshakeTimeoutError) when Config.HandshakeTimeout or ctx's deadline
// passes first, and with ctx.Err() if ctx is cancelled. An authenticated
// refusal fails it with ErrServerFull, ErrClientRejected or ErrFECRefused.
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

	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		c.Close()
		return err
	}
	hs, err := newClientHandshake(c.set.serverPublicKey, c.set.cipher, c.set.fec, binary.LittleEndian.Uint32(b[:]), time.Now(), rand.Reader, c.set.identity.client())
	if err != nil {
		c.Close()
		return fmt.Errorf("uxp: handshake: %w", err)
	}
	c.hs.Store(hs)
	if !c.ep.start() {
		// Close ran since the check above.
		c.hs.Store(nil)
		return ErrConnClosed
	}

	deadline := time.Now().Add(c.set.handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	retry := firstRetransmit
	timer := time.NewTimer(0)
	defer timer.Stop()
	attempts := 0
	var pkt [initiationIKSize]byte
	send := func(now time.Time) {
		p := pkt[:copy(pkt[:], hs.initiation())]
		c.cookieMu.Lock()
		if !c.cookieAt.IsZero() && now.Sub(c.cookieAt) < cookieSecretLife {
			putMAC2(p, &c.cookie)
		}
		c.cookieMu.Unlock()
		if err := c.ep.writeTo(p, c.server); err != nil {
			c.ep.log.Debug("uxp: sending initiation failed", "err", err)
		}
		attempts++
		c.tr.initiationSent(attempts, c.server)
	}
	for {
		select {
		case conn := <-c.established:
			select {
			case <-conn.ready:
				// OnReady may have panicked, which ends the session.
				return conn.Err()
			case <-conn.done:
				return conn.Err()
			}
		case err := <-c.refused:
			c.Close()
			return err
		case <-c.ep.closing:
			// Close was called (or the socket died) during the handshake.
			c.hs.Store(nil)
			select {
			case conn := <-c.established:
				// Established just before: report how the session ended.
				select {
				case <-conn.done:
					return conn.Err()
				default:
				}
			default:
			}
			c.Close()
			return ErrConnClosed
		case <-c.cookieCh:
			// The server is under load and gave us a cookie: retry at
			// once with mac2 rather than wait for the next retransmission.
			if now := time.Now(); now.Before(deadline) {
				send(now)
			}
		case <-ctx.Done():
			c.hs.Store(nil)
			c.Close()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &HandshakeTimeoutError{Attempts: attempts}
			}
			return fmt.Errorf("uxp: handshake: %w", ctx.Err())
		case <-timer.C:
			now := time.Now()
			if !now.Before(deadline) {
				c.hs.Store(nil)
				c.Close()
				return &HandshakeTimeoutError{Attempts: attempts}
			}
			send(now)
			timer.Reset(min(retry, deadline.Sub(now)))
			retry = min(2*retry, maxRetransmit)
		}
	}
}

// handleResponse runs on the read loop.
func (c *Client) handleResponse(b []byte, from netip.AddrPort) {
	hs := c.hs.Load()
	if hs == nil {
		c.ep.drops.malformed.Add(1) // no handshake in progress
		return
	}
	r, err := hs.consumeResponse(b)
	id, keys, fp := r.id, r.keys, r.fec
	r.keys.zero() // keys is the only copy from here on
	if errors.Is(err, ErrFECRefused) || errors.Is(err, ErrServerFull) || errors.Is(err, ErrClientRejected) {
		if c.hs.CompareAndSwap(hs, nil) {
			c.tr.handshakeRefused(from, err)
			c.refused <- err
		}
		return
	}
	if err != nil {
		if errors.Is(err, errHandshakeAuth) {
			c.ep.drops.authFailed.Add(1)
		} else {
			c.ep.drops.malformed.Add(1)
		}
		return
	}
	if fp.on() && !c.set.fec.on() {
		// The server must not impose FEC on a client that did not ask.
		c.ep.drops.authFailed.Add(1)
		keys.zero()
		return
	}
	if !c.hs.CompareAndSwap(hs, nil) {
		keys.zero()
		return
	}
	conn, err := newConn(c.ep, id, &keys, hs.cipher, fp, c.server, true, time.Now())
	if err != nil {
		// The server sent a decision this client cannot run (the handshake
		// is spent: hs is gone). Fail Start now rather than at its timeout.
		c.ep.drops.malformed.Add(1)
		c.refused <- fmt.Errorf("uxp: handshake: cannot set up the session: %w", err)
		return
	}
	c.tr.handshakeDone(id, c.server, hs.cipher, fp.data, fp.parity)
	conn.SetHandler(c.handler)
	conn.peerKey, conn.hasPeerKey = c.set.serverPublicKey, true
	c.resetToken = r.token
	c.ep.table.set(id, conn)
	c.conn.Store(conn)
	conn.shard.post(conn) // runs OnReady and sends the first heartbeat
	c.established <- conn
}

// handleControl runs on the read loop for cookie replies and stateless
// resets. It owns bp.
func (c *Client) handleControl(bp *packetBuf, n int, from netip.AddrPort) {
	b := bp[:n]
	switch b[0] {
	case msgCookieReply:
		hs := c.hs.Load()
		if hs == nil {
			c.ep.drops.malformed.Add(1) // no handshake in progress
			break
		}
		cookie, err := openCookieReply(b, hs.initiation(), &c.cookieKey)
		if err != nil {
			if errors.Is(err, errHandshakeAuth) {
				c.ep.drops.authFailed.Add(1)
			} else {
				c.ep.drops.malformed.Add(1)
			}
			break
		}
		c.hstats.cookiesReceived.Add(1)
		c.cookieMu.Lock()
		first := c.cookieAt.IsZero()
		c.cookie, c.cookieAt = cookie, time.Now()
		c.cookieMu.Unlock()
		if first {
			// Only the first cookie triggers an immediate resend, so that
			// forged cookie replies cannot make us send more than one
			// extra initiation.
			select {
			case c.cookieCh <- struct{}{}:
			default:
			}
		}
	case msgReset:
		conn := c.conn.Load()
		id, tok, ok := parseReset(b)
		if !ok {
			c.ep.drops.malformed.Add(1)
			break
		}
		// Only the server sends resets: one from any other address is
		// forged, whatever its token (security.md, stateless reset).
		if conn == nil || from != c.server || id != conn.id || !resetMatches(&tok, &c.resetToken) {
			c.ep.drops.authFailed.Add(1)
			break
		}
		c.hstats.resetsReceived.Add(1)
		// The session is owned by its shard: hand it the reset.
		c.ep.stage(conn, bp, n, from)
		return
	default:
		c.ep.drops.malformed.Add(1)
	}
	putPacketBuf(bp)
}

// Conn returns the session, or nil before Start has succeeded.
func (c *Client) Conn() *Conn { return c.conn.Load() }

// Close closes the session (messages already written get up to two
// seconds to be delivered), stops the client's goroutines and closes its
// PacketConn. It waits for all of that, so do not call it from a callback;
// call Conn().Close there. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	if conn := c.conn.Load(); conn != nil {
		conn.Close()
		t := time.NewTimer(closeLinger + time.Second)
		select {
		case <-conn.done:
		case <-t.C:
		}
		t.Stop()
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
	if conn := c.conn.Load(); conn != nil {
		st = conn.Stats()
	}
	st.Drops.add(c.ep.drops.snapshot())
	st.Handshake = c.hstats.snapshot()
	return st
}
