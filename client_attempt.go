package uxp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/wire"
)

// clientAttempt is one client handshake and the session it makes: what a
// Client holds once, and a Dialer once per Dial. Its owner routes the
// response and cookie replies that carry its sender index to it (on the
// read loop) and runs it (on the caller of Start or Dial).
type clientAttempt struct {
	set       *settings
	ep        *endpoint
	server    netip.AddrPort
	handler   ConnHandler
	tr        *tracer
	cookieKey *[32]byte          // from the server's public key; immutable
	hstats    *handshakeCounters // the owner's
	// register enters the new session in the endpoint's table; false
	// means its ID is taken (a Dialer's sessions to two servers).
	register func(id uint32, c *Conn) bool

	hs          atomic.Pointer[clientHandshake] // non-nil while run waits for a response
	established chan *Conn                      // capacity 1
	refused     chan error                      // capacity 1: a refusal, or a session that cannot run

	// Cookie replies (cookie.go), received on the read loop and used by
	// run when it (re)sends the initiation.
	cookieMu sync.Mutex
	cookie   [macSize]byte
	cookieAt time.Time     // zero: none
	cookieCh chan struct{} // capacity 1: resend now with mac2

	conn atomic.Pointer[Conn] // the session, from just before OnReady

	// sentAt is when run last sent the initiation, in ns since ep.epoch:
	// the start of the handshake's RTT sample (handshakeRTT); resent says
	// a copy sent before it went unanswered, which makes the sample
	// ambiguous. (A copy resent for a cookie reply is not: the reply
	// answered the earlier one.)
	sentAt atomic.Int64
	resent atomic.Bool
}

// errSessionIDTaken refuses a session whose server-chosen ID another
// session of the same Dialer already has.
var errSessionIDTaken = errors.New("uxp: handshake: the server chose a session ID this endpoint already uses")

func newClientAttempt(set *settings, ep *endpoint, server netip.AddrPort, handler ConnHandler, tr *tracer,
	cookieKey *[32]byte, hstats *handshakeCounters) *clientAttempt {
	return &clientAttempt{
		set: set, ep: ep, server: server, handler: handler, tr: tr, cookieKey: cookieKey, hstats: hstats,
		register: func(id uint32, c *Conn) bool {
			ep.table.set(id, c)
			return true
		},
		established: make(chan *Conn, 1),
		refused:     make(chan error, 1),
		cookieCh:    make(chan struct{}, 1),
	}
}

// clientSettings resolves the configuration of a Client or a Dialer
// (named by who in errors): it needs a PacketConn and a usable server key.
func clientSettings(who string, pc net.PacketConn, cfg *Config) (*settings, error) {
	if pc == nil {
		return nil, fmt.Errorf("uxp: %s: nil PacketConn", who)
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
	return set, nil
}

// dropAnswer counts a response or cookie reply that failed: AuthFailed if
// it did not authenticate, Malformed otherwise.
func (a *clientAttempt) dropAnswer(err error) {
	if errors.Is(err, errHandshakeAuth) {
		a.ep.drops.authFailed.Add(1)
	} else {
		a.ep.drops.malformed.Add(1)
	}
}

// newHandshake builds the initiation, with sender index index (random
// when zero).
func (a *clientAttempt) newHandshake(index uint32) (*clientHandshake, error) {
	if index == 0 {
		var b [4]byte
		if _, err := io.ReadFull(a.set.rng(), b[:]); err != nil {
			return nil, err
		}
		index = binary.LittleEndian.Uint32(b[:])
	}
	hs, err := newClientHandshake(a.set.serverPublicKey, a.set.headerCipher(), a.set.fec, index, time.Now(), a.set.rng(), a.set.identity.client(), a.set.hello(a.server))
	if err != nil {
		return nil, fmt.Errorf("uxp: handshake: %w", err)
	}
	return hs, nil
}

// run sends hs's initiation, retransmits it with back-off, and returns the
// session once it is established and OnReady has returned. It fails with a
// *HandshakeTimeoutError at Config.HandshakeTimeout or ctx's deadline,
// with ctx's error if ctx is cancelled, with the refusal's error, and with
// ErrConnClosed when the endpoint closes first. It never closes anything.
func (a *clientAttempt) run(ctx context.Context, hs *clientHandshake) (*Conn, error) {
	a.hs.Store(hs)
	deadline := time.Now().Add(a.set.handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	retry := firstRetransmit
	timer := time.NewTimer(0)
	defer timer.Stop()
	attempts := 0
	pkt := make([]byte, len(hs.initiation()))
	send := func(now time.Time) {
		p := pkt[:copy(pkt, hs.initiation())]
		a.cookieMu.Lock()
		if !a.cookieAt.IsZero() && now.Sub(a.cookieAt) < handshake.CookieSecretLife {
			handshake.PutMAC2(p, &a.cookie)
		}
		a.cookieMu.Unlock()
		if err := a.ep.writeTo(p, a.server); err != nil {
			a.ep.log.Debug("uxp: sending initiation failed", "err", err)
			a.readError(err) // a connected socket reports ICMP errors on writes too
		}
		attempts++
		a.sentAt.Store(int64(now.Sub(a.ep.epoch)))
		a.tr.initiationSent(attempts, a.server)
	}
	for {
		select {
		case conn := <-a.established:
			select {
			case <-conn.ready:
				// OnReady may have panicked, which ends the session.
				return conn, conn.Err()
			case <-conn.done:
				return conn, conn.Err()
			}
		case err := <-a.refused:
			return nil, err
		case <-a.ep.closing:
			// The owner closed (or the socket died) during the handshake.
			a.hs.Store(nil)
			select {
			case conn := <-a.established:
				// Established just before: report how the session ended.
				select {
				case <-conn.done:
					return conn, conn.Err()
				default:
				}
			default:
			}
			return nil, ErrConnClosed
		case <-a.cookieCh:
			// The server is under load and gave us a cookie: retry at
			// once with mac2 rather than wait for the next retransmission.
			if now := time.Now(); now.Before(deadline) {
				a.resent.Store(false) // the cookie reply answered the earlier copy
				send(now)
			}
		case <-ctx.Done():
			a.hs.Store(nil)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &HandshakeTimeoutError{Attempts: attempts}
			}
			return nil, fmt.Errorf("uxp: handshake: %w", ctx.Err())
		case <-timer.C:
			now := time.Now()
			if !now.Before(deadline) {
				a.hs.Store(nil)
				return nil, &HandshakeTimeoutError{Attempts: attempts}
			}
			a.resent.Store(attempts > 0)
			send(now)
			timer.Reset(min(retry, deadline.Sub(now)))
			retry = min(2*retry, maxRetransmit)
		}
	}
}

// takeResponse runs on the read loop with a response for this attempt.
func (a *clientAttempt) takeResponse(b []byte, from netip.AddrPort) {
	hs := a.hs.Load()
	if hs == nil {
		a.ep.drops.malformed.Add(1) // no handshake in progress
		return
	}
	r, err := hs.consumeResponse(b)
	id, keys, fp := r.id, r.keys, r.fec
	r.keys.zero() // keys is the only copy from here on
	var (
		rejected     *RejectError
		incompatible *incompatibleStatus
	)
	if errors.As(err, &incompatible) {
		// The server's refusal names its values; ours say what differs.
		// (Assigned only when non-nil: a nil *IncompatibleError in an
		// error would not be a nil error.)
		if ie := a.set.negotiate(a.server, incompatible.mtu, incompatible.lanes, 0).err; ie != nil {
			err = ie
		} else if _, ok := a.set.acceptSuite(incompatible.suite, hs.cipher); !ok {
			err = &IncompatibleError{Field: "Cipher", Local: int(a.set.cipher), Remote: int(incompatible.suite)}
		} else {
			err = &IncompatibleError{Field: "MTU", Local: a.set.mtuFor(a.server), Remote: incompatible.mtu}
		}
	}
	if errors.Is(err, ErrFECRefused) || errors.Is(err, ErrServerFull) || errors.Is(err, ErrClientRejected) ||
		errors.As(err, &rejected) || incompatible != nil || errors.Is(err, ErrServerShuttingDown) {
		if a.hs.CompareAndSwap(hs, nil) {
			a.tr.handshakeRefused(from, err)
			a.refused <- err
		}
		return
	}
	if err != nil {
		a.dropAnswer(err)
		return
	}
	neg := a.set.negotiate(a.server, r.peerMTU, r.peerLanes, 0)
	if neg.err != nil {
		// The server accepted what we cannot run (an older server does
		// not compare; this one would have refused). Its half-open
		// session expires unconfirmed.
		keys.zero()
		if a.hs.CompareAndSwap(hs, nil) {
			a.tr.handshakeRefused(from, neg.err)
			a.refused <- neg.err
		}
		return
	}
	cipher, ok := a.set.acceptSuite(r.suite, hs.cipher)
	if !ok {
		// The server chose a cipher this client did not offer: only a
		// broken server does (the choice is authenticated).
		a.ep.drops.authFailed.Add(1)
		keys.zero()
		return
	}
	if fp.on() && !a.set.fec.on() {
		// The server must not impose FEC on a client that did not ask.
		a.ep.drops.authFailed.Add(1)
		keys.zero()
		return
	}
	if !a.hs.CompareAndSwap(hs, nil) {
		keys.zero()
		return
	}
	conn, err := newSession(a.ep, id, &keys, cipher, fp, a.server, true, time.Now(), neg.mtu)
	if err != nil {
		// The server sent a decision this client cannot run (the handshake
		// is spent: hs is gone). Fail now rather than at the timeout.
		a.ep.drops.malformed.Add(1)
		a.refused <- fmt.Errorf("uxp: handshake: cannot set up the session: %w", err)
		return
	}
	conn.SetHandler(a.handler)
	// The handshake's round trip is the session's first RTT sample, so
	// Stats().RTT is valid when OnReady runs. The session is not shared
	// yet: this goroutine still owns its shard state.
	now := time.Now()
	conn.handshakeRTT(now.Sub(a.ep.epoch)-time.Duration(a.sentAt.Load()), a.resent.Load(), now)
	conn.peerKey, conn.hasPeerKey = a.set.serverPublicKey, true
	conn.connectData, conn.acceptData = a.set.connectData, r.acceptData
	// Written before the session is published in the table, which the
	// read loop reads it through.
	conn.resetToken, conn.resetFrom = r.token, a.server
	if !a.register(id, conn) {
		// The server's half-open session expires unconfirmed.
		conn.zeroKeys()
		a.refused <- errSessionIDTaken
		return
	}
	a.tr.handshakeDone(id, a.server, cipher, fp.data, fp.parity)
	a.conn.Store(conn)
	conn.shard.post(conn) // runs OnReady and sends the first heartbeat
	a.established <- conn
}

// readError fails the handshake in progress, if any, when the socket
// reports that nothing listens at the server's port: an ICMP port
// unreachable on a connected socket (ECONNREFUSED), like TCP's RST. Other
// errors, and this one once the session is established, are left to the
// retransmissions and timeouts. Any goroutine.
func (a *clientAttempt) readError(err error) {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	hs := a.hs.Load()
	if hs == nil || !a.hs.CompareAndSwap(hs, nil) {
		return
	}
	a.refused <- fmt.Errorf("uxp: handshake with %v: nothing listens there: %w", a.server, err)
}

// takeCookie runs on the read loop with a cookie reply for this attempt.
func (a *clientAttempt) takeCookie(b []byte) {
	hs := a.hs.Load()
	if hs == nil {
		a.ep.drops.malformed.Add(1) // no handshake in progress
		return
	}
	cookie, err := handshake.OpenCookieReply(b, hs.initiation(), a.cookieKey)
	if err != nil {
		a.dropAnswer(err)
		return
	}
	a.hstats.cookiesReceived.Add(1)
	a.cookieMu.Lock()
	first := a.cookieAt.IsZero()
	a.cookie, a.cookieAt = cookie, time.Now()
	a.cookieMu.Unlock()
	if first {
		// Only the first cookie triggers an immediate resend, so that
		// forged cookie replies cannot make us send more than one extra
		// initiation.
		select {
		case a.cookieCh <- struct{}{}:
		default:
		}
	}
}

// takeReset runs on the read loop with a stateless reset; it owns bp.
func (ep *endpoint) takeReset(bp *packetBuf, n int, from netip.AddrPort, hstats *handshakeCounters) {
	id, tok, ok := wire.ParseReset(bp[:n])
	if !ok {
		ep.drops.malformed.Add(1)
		putPacketBuf(bp)
		return
	}
	conn := ep.table.get(id)
	// Only the server sends resets: one from any other address is forged,
	// whatever its token (security.md, stateless reset).
	if conn == nil || !conn.isClient || from != conn.resetFrom || !handshake.ResetMatches(&tok, &conn.resetToken) {
		ep.drops.authFailed.Add(1)
		putPacketBuf(bp)
		return
	}
	hstats.resetsReceived.Add(1)
	// The session is owned by its shard: hand it the reset (after this
	// read, with the read's other datagrams).
	ep.stage(conn, bp, n, from)
}
