package uxp

import (
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Server accepts uxp sessions on a PacketConn. Create it with NewServer,
// then call Start. All methods are safe for concurrent use.
type Server struct {
	set     *settings
	handler ServerHandler
	static  *staticKey
	pub     PublicKey
	mac1    [32]byte
	ep      *endpoint

	// hsQueue bounds the handshakes waiting for the handshake loop; a full
	// queue drops initiations (the client retransmits).
	hsQueue chan handshakeJob

	halfMu   sync.Mutex
	halfOpen map[[noiseKeySize]byte]*Conn // by client ephemeral key
	// confirmed remembers, for HandshakeTimeout, the ephemeral keys of
	// sessions that left the half-open table because they were confirmed,
	// so that late retransmissions (and replays) of their initiations cost
	// no Diffie-Hellman. Bounded by maxHalfOpen.
	confirmed map[[noiseKeySize]byte]time.Time
	lastSweep time.Time // handshake loop: last pruning of confirmed

	// Owned by the handshake loop.
	cookies   *cookieChecker
	limiter   *rateLimiter    // per source, for cookie-validated initiations
	stamps    *timestampTable // last initiation timestamp per client key
	loadUntil time.Time       // under load until then
	resetKey  [32]byte        // immutable

	// Owned by the read loop.
	resets *resetSender

	hstats    handshakeCounters
	forceLoad atomic.Bool // tests: behave as under load

	accepted  atomic.Uint64
	completed atomic.Uint64
	refused   atomic.Uint64
	sessions  atomic.Int64
	live      connSet // announced sessions, for RangeConns
	tr        tracer

	// hsConfirmed and hsLatency count the handshakes clients completed
	// (admit) and how long each took.
	hsConfirmed atomic.Uint64
	hsLatency   histogramCounters

	mu      sync.Mutex
	started bool
	closed  bool
	stopped chan struct{} // closed once OnClosed has run
}

type handshakeJob struct {
	buf  *packetBuf
	n    int
	from netip.AddrPort
}

/* Implementation constants */
const (
	handshakeQueueLen = 1024
	// maxHalfOpen bounds sessions that got a response but have not yet
	// proved they hold the keys.
	maxHalfOpen = 1 << 16
	// The server is under load when the handshake queue holds at least
	// underLoadQueueLen initiations, and stays so for underLoadAfter
	// (wireguard-go: QueueHandshakeSize/8 and UnderLoadAfterTime).
	underLoadQueueLen = handshakeQueueLen / 8
	underLoadAfter    = time.Second
	// Per-source Diffie-Hellman budget while under load, for initiations
	// that carry a valid mac2. wireguard-go allows 20 per second, burst 5,
	// per IP; a game server sees many players behind one carrier-grade NAT
	// address, so uxp allows more: about 1.5 % of a core per source.
	handshakeRate    = 100
	handshakeBurst   = 100
	handshakeSources = 1 << 16
	// maxClientKeys bounds the per-client-key timestamp table.
	maxClientKeys = 1 << 16
)

// NewServer prepares a Server on pc. cfg must hold the server's
// PrivateKey; a nil cfg is invalid for that reason. handler receives the
// Server's events; nil means NopServerHandler. Once NewServer succeeds the
// Server owns pc and closes it in Close, whether or not it was started.
func NewServer(pc net.PacketConn, handler ServerHandler, cfg *Config) (*Server, error) {
	if pc == nil {
		return nil, errors.New("uxp: NewServer: nil PacketConn")
	}
	set, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if set.privateKey.IsZero() {
		return nil, &ConfigError{Field: "PrivateKey", Reason: "required for a server"}
	}
	pub, err := set.privateKey.PublicKey()
	if err != nil {
		return nil, &ConfigError{Field: "PrivateKey", Reason: err.Error()}
	}
	static, err := newStaticKey(set.privateKey)
	if err != nil {
		return nil, &ConfigError{Field: "PrivateKey", Reason: err.Error()}
	}
	if handler == nil {
		handler = NopServerHandler{}
	}
	s := &Server{
		set:       set,
		handler:   handler,
		static:    static,
		pub:       pub,
		mac1:      mac1Key(pub),
		hsQueue:   make(chan handshakeJob, handshakeQueueLen),
		halfOpen:  make(map[[noiseKeySize]byte]*Conn),
		stopped:   make(chan struct{}),
		cookies:   newCookieChecker(pub, rand.Reader),
		limiter:   newRateLimiter(handshakeRate, handshakeBurst, handshakeSources),
		stamps:    newTimestampTable(maxClientKeys),
		resetKey:  resetKey(set.privateKey),
		resets:    newResetSender(set.privateKey),
		tr:        newTracer(set.tracer, false),
		confirmed: make(map[[noiseKeySize]byte]time.Time),
	}
	ep := newEndpoint(pc, set, set.workers)
	ep.onInitiation = s.queueInitiation
	ep.onUnknownSession = s.sendReset
	ep.onAdmit = s.admit
	ep.onEstablished = s.announce
	ep.onConnClosed = s.connClosed
	s.ep = ep
	return s, nil
}

// Start begins serving. It returns at once; events arrive on the handler.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.started {
		return ErrAlreadyStarted
	}
	s.started = true
	s.ep.start()
	s.ep.wg.Add(1)
	go func() {
		defer s.ep.wg.Done()
		s.handshakeLoop()
	}()
	// Report a socket failure once everything has stopped.
	go func() {
		s.ep.wg.Wait()
		s.finish()
	}()
	return nil
}

// Close ends every session (each gets ErrServerClosed and a close packet),
// stops every goroutine the Server started, closes the PacketConn, and
// returns when all of that is done and OnClosed has run. Do not call it
// from a handler callback: it waits for the workers those callbacks run on.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.stopped
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		s.ep.pc.Close()
		close(s.stopped)
		return nil
	}
	s.ep.stop()
	<-s.stopped
	return nil
}

func (s *Server) finish() {
	s.ep.wg.Wait()
	s.halfMu.Lock()
	clear(s.halfOpen)
	clear(s.confirmed)
	s.halfMu.Unlock()
	// The handshake loop has stopped; return what it left queued.
	for len(s.hsQueue) > 0 {
		putPacketBuf((<-s.hsQueue).buf)
	}
	s.mu.Lock()
	closedByUser := s.closed
	s.closed = true
	s.mu.Unlock()
	var err error
	if !closedByUser {
		err = s.ep.readErr
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.ep.log.Error("uxp: OnClosed callback panicked", "panic", r)
			}
		}()
		s.handler.OnClosed(err)
	}()
	close(s.stopped)
}

// PublicKey returns the server's static public key, which clients pin.
func (s *Server) PublicKey() PublicKey { return s.pub }

// Addr returns the local address of the server's socket.
func (s *Server) Addr() net.Addr { return s.ep.pc.LocalAddr() }

// Stats returns a snapshot of the server's counters, totalled over its
// workers.
func (s *Server) Stats() ServerStats {
	st := ServerStats{
		Sessions:            int(s.sessions.Load()),
		SessionsAccepted:    s.accepted.Load(),
		HandshakesCompleted: s.completed.Load(),
		HandshakesRefused:   s.refused.Load(),
		Drops:               s.ep.drops.snapshot(),
		Handshake:           s.hstats.snapshot(),
		HandshakesConfirmed: s.hsConfirmed.Load(),
		HandshakeLatency:    s.hsLatency.snapshot(),
		SessionsClosed:      s.ep.closes.snapshot(),
	}
	s.halfMu.Lock()
	st.HalfOpen = len(s.halfOpen)
	s.halfMu.Unlock()
	for _, sh := range s.ep.shards {
		sh.traffic.addTo(&st)
		st.Drops.add(sh.drops.snapshot())
	}
	st.SendQueueBytes, st.Latency, st.RTT = s.live.totals()
	return st
}

// queueInitiation runs on the read loop: it hands the initiation to the
// handshake loop without doing any cryptography itself.
func (s *Server) queueInitiation(bp *packetBuf, n int, from netip.AddrPort) {
	select {
	case s.hsQueue <- handshakeJob{buf: bp, n: n, from: from}:
	default:
		s.ep.drops.overload.Add(1)
		putPacketBuf(bp)
	}
}

func (s *Server) handshakeLoop() {
	for {
		select {
		case j := <-s.hsQueue:
			now := time.Now()
			// Workers behind on established sessions' traffic count as
			// load too: new handshakes then need a cookie and pass the
			// rate limit, rather than take CPU the sessions need.
			if len(s.hsQueue) >= underLoadQueueLen || s.forceLoad.Load() || s.ep.workersBehind() {
				s.loadUntil = now.Add(underLoadAfter)
			}
			s.handleInitiation(j.buf[:j.n], j.from, now, now.Before(s.loadUntil))
			putPacketBuf(j.buf)
		case <-s.ep.closing:
			return
		}
	}
}

// handleInitiation answers one initiation. Order matters, cheapest first:
// length, version and mac1; then, under load, mac2 (or a cookie reply);
// the half-open table; under load, the per-source rate limit; only then
// Diffie-Hellman. No session state exists until the initiation has
// decrypted and the policy (client key, timestamp, MaxSessions, FEC)
// accepted it. Every answer is smaller than the initiation.
func (s *Server) handleInitiation(pkt []byte, from netip.AddrPort, now time.Time, underLoad bool) {
	switch err := checkInitiation(pkt, &s.mac1); {
	case errors.Is(err, errHandshakeMAC):
		s.ep.drops.authFailed.Add(1)
		return
	case err != nil:
		s.ep.drops.malformed.Add(1)
		return
	}
	if !underLoad && s.nearlyFull() {
		// Half-open sessions could take the free slots: only sources that
		// can receive at their address (mac2) and stay within their rate
		// limit may add more.
		underLoad = true
	}
	if underLoad && !s.cookies.validMAC2(pkt, from, now) {
		// The source has not shown it can receive at its address: no
		// Diffie-Hellman, just a cookie it must echo.
		reply, err := s.cookies.reply(pkt, from, now)
		if err == nil && s.ep.writeTo(reply[:], from) == nil {
			s.hstats.cookiesSent.Add(1)
		}
		return
	}
	var eph [noiseKeySize]byte
	copy(eph[:], pkt[8:8+noiseKeySize])
	s.halfMu.Lock()
	if c := s.halfOpen[eph]; c != nil {
		// A retransmitted initiation: answer again with the same response
		// (never larger than the initiation), without new work or state.
		resp := c.response
		s.halfMu.Unlock()
		_ = s.ep.writeTo(resp[:], from)
		return
	}
	if until, ok := s.confirmed[eph]; ok && now.Before(until) {
		// A late retransmission, or a replay, of an initiation whose
		// session is already established.
		s.halfMu.Unlock()
		s.ep.drops.replay.Add(1)
		return
	}
	if now.Sub(s.lastSweep) >= time.Second {
		s.lastSweep = now
		for k, until := range s.confirmed {
			if !now.Before(until) {
				delete(s.confirmed, k)
			}
		}
	}
	halfOpen := len(s.halfOpen)
	s.halfMu.Unlock()
	if halfOpen >= maxHalfOpen {
		s.ep.drops.overload.Add(1)
		return
	}
	// The rate limit guards the Diffie-Hellman below, so it comes after
	// the half-open lookup: retransmissions spend no tokens.
	if underLoad && !s.limiter.allow(from.Addr(), now) {
		s.hstats.rateLimited.Add(1)
		s.ep.drops.rateLimited.Add(1) // also a drop without reply
		return
	}
	if (pkt[3]&flagPSK != 0) != (s.set.identity.psk != nil) {
		// With or without a pre-shared key, the two sides cannot agree:
		// no need to spend a Diffie-Hellman finding out.
		s.ep.drops.authFailed.Add(1)
		return
	}
	s.hstats.processed.Add(1)
	h, err := readInitiation(s.static, s.set.identity.psk, pkt, rand.Reader)
	if err != nil {
		s.ep.drops.authFailed.Add(1)
		return
	}
	in := &h.in
	if in.hasPeerKey && !s.stamps.fresh(in.peerKey, in.timestamp) {
		// A replay of an initiation already accepted: ignore it, as
		// WireGuard does, without answering.
		s.hstats.timestampReplays.Add(1)
		return
	}
	decision, fecOK := negotiateFEC(s.set.fec, in.fecReq)
	status := statusOK
	switch {
	case !s.set.identity.admits(in):
		status = statusClientDenied
		s.hstats.refusedClientKey.Add(1)
	case s.set.maxSessions > 0 && int(s.sessions.Load()) >= s.set.maxSessions:
		// Only established sessions fill the server: half-open ones cost
		// an attacker nothing but a Diffie-Hellman of ours, so counting
		// them would let it lock real clients out.
		status = statusServerFull
		s.hstats.refusedFull.Add(1)
	case !fecOK:
		status = statusFECRefused
		s.refused.Add(1)
	}
	if status != statusOK {
		s.tr.handshakeRefused(from, statusErr(status))
		// Authenticated, so the client can trust the refusal and report
		// it; no session state is kept.
		resp, _, err := h.writeResponse(0, status, fecParams{}, nil)
		if err == nil {
			_ = s.ep.writeTo(resp[:], from)
		}
		return
	}
	id, err := s.ep.table.reserve()
	if err != nil {
		return
	}
	token := resetToken(&s.resetKey, id)
	resp, keys, err := h.writeResponse(id, statusOK, decision, &token)
	if err != nil {
		s.ep.table.remove(id)
		s.ep.drops.authFailed.Add(1)
		return
	}
	c, err := newConn(s.ep, id, &keys, in.cipher, decision, from, false, now)
	if err != nil {
		s.ep.table.remove(id)
		return
	}
	if in.hasPeerKey {
		s.stamps.accept(in.peerKey, in.timestamp)
		c.peerKey, c.hasPeerKey = in.peerKey, true
	}
	c.ephemeral = eph
	c.response = resp
	s.halfMu.Lock()
	s.halfOpen[eph] = c
	s.halfMu.Unlock()
	s.ep.table.set(id, c)
	c.shard.post(c) // schedules the half-open expiry
	s.completed.Add(1)
	s.tr.initiationAnswered(id, from, in.cipher, decision.data, decision.parity)
	_ = s.ep.writeTo(resp[:], from)
}

// sendReset runs on the read loop for a transport packet whose session ID
// is unknown: if the rate limits allow, it answers with a stateless reset
// so a client of a previous run of this server learns at once that its
// session is gone.
func (s *Server) sendReset(pkt []byte, from netip.AddrPort) {
	r, ok := s.resets.answer(pkt, from, time.Now())
	if !ok {
		return
	}
	if s.ep.writeTo(r[:], from) == nil {
		s.hstats.resetsSent.Add(1)
	}
}

// nearlyFull reports whether established and half-open sessions together
// reach MaxSessions.
func (s *Server) nearlyFull() bool {
	if s.set.maxSessions <= 0 {
		return false
	}
	s.halfMu.Lock()
	n := len(s.halfOpen)
	s.halfMu.Unlock()
	return int(s.sessions.Load())+n >= s.set.maxSessions
}

// admit runs on the session's shard when the client's first packet
// authenticated, before announce. It takes one of the MaxSessions slots,
// and fails when other half-open sessions were confirmed first and took
// the last ones: MaxSessions is a hard bound on established sessions.
func (s *Server) admit(c *Conn) bool {
	// The client's first packet authenticated: its handshake is complete,
	// whether or not a slot is left. The handshake loop took the
	// initiation handshakeTimeout before the half-open deadline newConn
	// set; admit has no now of its own, and a clock read per handshake is
	// cheap.
	s.hsConfirmed.Add(1)
	s.hsLatency.observe(time.Since(c.handshakeBy.Add(-s.set.handshakeTimeout)))
	for max := int64(s.set.maxSessions); ; {
		n := s.sessions.Load()
		if max > 0 && n >= max {
			s.hstats.refusedFull.Add(1)
			return false
		}
		if s.sessions.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// announce runs on the session's shard when the client's first packet
// authenticated and admit took a slot for it.
func (s *Server) announce(c *Conn) {
	s.halfMu.Lock()
	delete(s.halfOpen, c.ephemeral)
	if len(s.confirmed) < maxHalfOpen {
		s.confirmed[c.ephemeral] = time.Now().Add(s.set.handshakeTimeout)
	}
	s.halfMu.Unlock()
	s.accepted.Add(1)
	s.live.add(c)
	defer c.recoverCallback("OnNewConnComing")
	s.handler.OnNewConnComing(c)
}

func (s *Server) connClosed(c *Conn, err error, announced bool) {
	if !announced {
		s.halfMu.Lock()
		if s.halfOpen[c.ephemeral] == c {
			delete(s.halfOpen, c.ephemeral)
		}
		s.halfMu.Unlock()
		return
	}
	s.sessions.Add(-1)
	s.live.remove(c)
	defer func() {
		if r := recover(); r != nil {
			s.ep.log.Error("uxp: OnConnClosed callback panicked", "session", c.id, "panic", r)
		}
	}()
	s.handler.OnConnClosed(c, err)
}
