package uxp

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/wire"
)

// Server accepts uxp sessions on a PacketConn. Create it with NewServer,
// then call Start. All methods are safe for concurrent use.
type Server struct {
	set     *settings
	handler ServerHandler
	static  *handshake.StaticKey
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
	// sources counts sessions per source for
	// Config.Admission.MaxSessionsPerSource (admission.go).
	sources sourceTable

	// Owned by the handshake loop.
	cookies   *handshake.CookieChecker
	limiter   *handshake.RateLimiter    // per source, for cookie-validated initiations; nil: none
	stamps    *handshake.TimestampTable // last initiation timestamp per client key
	loadUntil time.Time                 // under load until then
	// pending holds deferred connect requests (connect.go) by client
	// ephemeral key, bounded by maxPendingRequests; decisions brings
	// their answers.
	pending   map[[noiseKeySize]byte]*ConnectRequest
	decisions chan *ConnectRequest
	resetKey  [32]byte // immutable

	// Owned by the read loop.
	resets *handshake.ResetSender

	hstats    handshakeCounters
	forceLoad atomic.Bool // tests: behave as under load

	accepted  atomic.Uint64
	completed atomic.Uint64
	refused   atomic.Uint64
	sessions  atomic.Int64
	live      connSet // announced sessions, for RangeConns
	tr        tracer

	// hsConfirmed and hsLatency count the handshakes clients completed
	// (onAdmit) and how long each took.
	hsConfirmed atomic.Uint64
	hsLatency   histogramCounters

	// refusing is set by Shutdown and Listener.Close: new initiations get
	// an authenticated refusal and half-open sessions are not admitted.
	refusing atomic.Bool
	// ended is signalled (capacity 1) whenever an announced session ends
	// or a session stops draining, for Shutdown.
	ended chan struct{}
	lst   *Listener // set by Listen before Start; nil for a plain Server

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
	// Config.Admission.LoadThreshold initiations, and stays so for
	// underLoadAfter (wireguard-go: UnderLoadAfterTime). The per-source
	// rate limit's defaults are in admission.go.
	underLoadAfter   = time.Second
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
	static, err := handshake.NewStaticKey(set.privateKey)
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
		mac1:      handshake.MAC1Key(pub, set.identity.psk),
		hsQueue:   make(chan handshakeJob, handshakeQueueLen),
		halfOpen:  make(map[[noiseKeySize]byte]*Conn),
		stopped:   make(chan struct{}),
		ended:     make(chan struct{}, 1),
		cookies:   handshake.NewCookieChecker(pub, rand.Reader),
		sources:   make(sourceTable),
		stamps:    handshake.NewTimestampTable(maxClientKeys),
		resetKey:  handshake.ResetKey(set.privateKey),
		resets:    handshake.NewResetSender(set.privateKey),
		tr:        newTracer(set.tracer, false),
		confirmed: make(map[[noiseKeySize]byte]time.Time),
		pending:   make(map[[noiseKeySize]byte]*ConnectRequest),
		decisions: make(chan *ConnectRequest, 2*maxPendingRequests),
	}
	if a := set.admission; a.rate > 0 {
		s.limiter = handshake.NewRateLimiter(a.rate, a.burst, handshakeSources)
	}
	ep := newEndpoint(pc, set, set.workers, s)
	static.Ops = &ep.x25519
	// A server is where many flows, and many packets of one flow, meet:
	// it reads in batches, with GRO.
	ep.batchRead = true
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

// Close ends every session at once (each gets ErrServerClosed, and its
// peer a close packet with CloseServerShutdown, which it reads as an
// error, never as an orderly end), stops every goroutine the Server
// started, closes the PacketConn, and returns when all of that is done
// and OnClosed has run. Data not yet delivered is lost; Shutdown delivers
// it first. Do not call it from a handler callback: it waits for the
// workers those callbacks run on.
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

// Shutdown ends the server gracefully. It stops taking new sessions (new
// clients get an authenticated refusal: their Start fails with
// ErrServerShuttingDown), closes every session with CloseServerShutdown
// once what was written to it has been delivered (each lingers as after
// Conn.Close, Config.CloseLinger), and returns nil when all have ended,
// their peers have confirmed the close (or a few seconds of repeating it
// passed), and the Server has stopped, as after Close. If ctx is done first, it ends
// the remaining sessions at once (as Close does, with the same code) and
// returns ctx's error. Do not call it from a handler callback.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	live := s.started && !s.closed
	s.mu.Unlock()
	if !live {
		return s.Close()
	}
	s.refusing.Store(true)
	for _, c := range s.live.snapshot() {
		c.requestClose(CloseServerShutdown, "server shutdown", true)
	}
	// Wait for the sessions to end, and for their close frames to be
	// confirmed (draining): Close would cut the repetitions short.
	for s.sessions.Load() > 0 || s.ep.draining.Load() > 0 {
		select {
		case <-s.ended:
		case <-s.stopped:
			return nil // the socket failed, or Close ran
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	return s.Close()
}

func (s *Server) finish() {
	s.ep.wg.Wait()
	s.halfMu.Lock()
	clear(s.halfOpen)
	clear(s.confirmed)
	clear(s.sources)
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
				s.ep.callbackPanicked("Server OnClosed", 0, r)
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
		CallbackPanics:      s.ep.callbackPanics.Load(),
		Unhandled:           s.ep.unhandled.snapshot(),
		KCPFastPath:         s.ep.kcpFastPath(),
	}
	s.halfMu.Lock()
	st.HalfOpen = len(s.halfOpen)
	s.halfMu.Unlock()
	for _, sh := range s.ep.shards {
		sh.traffic.addTo(&st)
		st.Drops.add(sh.drops.snapshot())
	}
	st.SendQueueBytes, st.HeldBytes, st.Latency, st.RTT = s.live.totals()
	return st
}

// onInitiation runs on the read loop: it hands the initiation to the
// handshake loop without doing any cryptography itself.
func (s *Server) onInitiation(bp *packetBuf, n int, from netip.AddrPort) bool {
	select {
	case s.hsQueue <- handshakeJob{buf: bp, n: n, from: from}:
	default:
		s.ep.drops.overload.Add(1)
		putPacketBuf(bp)
	}
	return true
}

// onResponse: a server takes no handshake responses.
func (s *Server) onResponse([]byte, netip.AddrPort) bool { return false }

// onControl: a server takes no cookie replies or stateless resets.
func (s *Server) onControl(*packetBuf, int, netip.AddrPort) bool { return false }

// onReadError: a server keeps serving through per-datagram read errors.
func (s *Server) onReadError(error) {}

// onConnFreed runs on the shard once an ended session left the tables.
func (s *Server) onConnFreed(*Conn) {
	notify(s.ended)
	if s.lst != nil {
		s.lst.maybeStop()
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
			if len(s.hsQueue) >= s.set.admission.loadThreshold || s.forceLoad.Load() || s.ep.workersBehind() {
				s.loadUntil = now.Add(underLoadAfter)
			}
			s.handleInitiation(j.buf[:j.n], j.from, now, now.Before(s.loadUntil))
			putPacketBuf(j.buf)
		case req := <-s.decisions:
			s.takeDecision(req, time.Now())
		case <-s.ep.closing:
			return
		}
	}
}

// handleInitiation answers one initiation. Order matters, cheapest first:
// length, version and mac1; then, under load or for a source at its
// session limit, mac2 (or a cookie reply); the half-open table; the
// per-source session limit; under load, the per-source rate limit; only
// then Diffie-Hellman. No session state exists until the initiation has
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
	src := sourceOf(from)
	perSource := s.set.admission.perSource
	if !underLoad && (s.nearlyFull() || s.sourceFull(src)) {
		// Half-open sessions could take the free slots (of the server, or
		// of this source, in whose name anyone can send initiations): only
		// sources that can receive at their address (mac2) and stay within
		// their rate limit may add more.
		underLoad = true
	}
	if underLoad && !s.cookies.ValidMAC2(pkt, from, now) {
		// The source has not shown it can receive at its address: no
		// Diffie-Hellman, just a cookie it must echo.
		reply, err := s.cookies.Reply(pkt, from, now)
		if err == nil && s.ep.writeTo(reply[:], from) == nil {
			s.hstats.cookiesSent.Add(1)
		}
		return
	}
	eph := wire.InitiationHeader(pkt).Ephemeral()
	s.halfMu.Lock()
	if c := s.halfOpen[eph]; c != nil {
		// A retransmitted initiation: answer again with the same response
		// (never larger than the initiation), without new work or state.
		resp := c.response
		c.cong.handshakeSent.Store(int64(now.Sub(s.ep.epoch)))
		c.cong.handshakeResent.Store(true)
		s.halfMu.Unlock()
		_ = s.ep.writeTo(resp[:], from)
		return
	}
	if req := s.pending[eph]; req != nil && now.Before(req.deadline) {
		// The application has not answered yet (no reply), or rejected
		// (the same reply again).
		s.halfMu.Unlock()
		if req.answer != nil {
			_ = s.ep.writeTo(req.answer, from)
		}
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
		s.sweepPending(now)
	}
	halfOpen := len(s.halfOpen)
	// Under load, mac2 was valid: the source receives at its address.
	proven := underLoad
	admitted := s.sources.admits(src, perSource, proven)
	s.halfMu.Unlock()
	if halfOpen >= maxHalfOpen {
		s.ep.drops.overload.Add(1)
		return
	}
	if !admitted {
		// The source holds MaxSessionsPerSource sessions: no
		// Diffie-Hellman, no state, no answer.
		s.hstats.sourceLimited.Add(1)
		s.ep.drops.rateLimited.Add(1)
		return
	}
	// The rate limit guards the Diffie-Hellman below, so it comes after
	// the half-open lookup: retransmissions spend no tokens.
	if underLoad && s.limiter != nil && !s.limiter.Allow(from.Addr(), now) {
		s.hstats.rateLimited.Add(1)
		s.ep.drops.rateLimited.Add(1) // also a drop without reply
		return
	}
	if (pkt[3]&flagPSK != 0) != (s.set.identity.psk != nil) {
		// With or without a pre-shared key, the two sides cannot agree:
		// no need to spend a Diffie-Hellman finding out. (Only a client
		// that holds our psk, or a server without one, gets here: mac1 is
		// keyed with the psk.)
		s.ep.drops.authFailed.Add(1)
		return
	}
	s.hstats.processed.Add(1)
	h, err := readInitiation(s.static, s.set.identity.psk, pkt, s.set.rng())
	if err != nil {
		s.ep.drops.authFailed.Add(1)
		return
	}
	in := &h.in
	if in.hasPeerKey && !s.stamps.Fresh(in.peerKey, in.timestamp) {
		// A replay of an initiation already accepted: ignore it, as
		// WireGuard does, without answering.
		s.hstats.timestampReplays.Add(1)
		return
	}
	decision, fecOK := negotiateFEC(s.set.fec, in.fecReq)
	neg := s.set.negotiate(from, in.peerMTU, in.peerLanes, in.peerMinMTU)
	offer := in.suites
	if s.set.hooks.oldHello {
		offer = 0 // as a server from before negotiation: the header's cipher
	}
	suite, suiteOK := chooseSuite(s.set.cipher, s.set.aesHardware, in.cipher, offer, in.suiteFlags)
	status := statusOK
	var refusal error
	switch {
	case s.refusing.Load():
		status = statusShuttingDown
	case !s.admits(in):
		status = statusClientDenied
		s.hstats.refusedClientKey.Add(1)
	case s.set.maxSessions > 0 && int(s.sessions.Load()) >= s.set.maxSessions:
		// Only established sessions fill the server: half-open ones cost
		// an attacker nothing but a Diffie-Hellman of ours, so counting
		// them would let it lock real clients out.
		status = statusServerFull
		s.hstats.refusedFull.Add(1)
	case s.lst != nil && s.lst.backlogFull(halfOpen):
		// The Listener's backlog (with the half-open sessions that will
		// join it) is full: refuse now, so the client's Dial fails,
		// rather than establish a session that would have to be closed.
		status = statusServerFull
		s.hstats.refusedFull.Add(1)
	case !fecOK:
		status = statusFECRefused
		s.refused.Add(1)
	case neg.err != nil:
		// The peer's lanes or packet size cannot work with ours: say so
		// now (with our values, so the client can name the difference)
		// rather than run a session that loses messages.
		status = statusIncompatible
		refusal = neg.err
		s.hstats.refusedIncompatible.Add(1)
	case !suiteOK:
		// The client pinned a cipher other than ours (or, from before
		// negotiation, names one): refuse with ours, so the client can
		// say which it wanted.
		status = statusIncompatible
		refusal = &IncompatibleError{Field: "Cipher", Local: int(s.set.cipher), Remote: int(in.cipher)}
		s.hstats.refusedIncompatible.Add(1)
	}
	if status != statusOK {
		if refusal == nil {
			refusal = statusErr(status)
		}
		s.tr.handshakeRefused(from, refusal)
		// Authenticated, so the client can trust the refusal and report
		// it; no session state is kept.
		resp, _, err := h.writeAnswer(0, status, fecParams{}, nil, s.set.answer(from, s.set.cipher, 0, nil))
		if err == nil {
			_ = s.ep.writeTo(resp, from)
		}
		return
	}
	in.cipher = suite
	req := &ConnectRequest{
		s: s, remote: from, peerKey: in.peerKey, hasPeerKey: in.hasPeerKey, data: in.connectData,
		deadline: now.Add(s.set.handshakeTimeout),
		h:        h, src: src, proven: proven, eph: eph, fec: decision, mtu: neg.mtu,
	}
	ch, ok := s.handler.(ConnectHandler)
	if !ok {
		s.open(req, nil, now)
		return
	}
	// An answer may come (from a goroutine OnConnectRequest started)
	// before OnConnectRequest returns DeferConnect: it waits in
	// s.decisions until this call has entered req in s.pending.
	req.deferred.Store(true)
	d := s.decide(ch, req)
	if d.kind != decideDefer {
		req.answered.Store(true) // later answers are refused
		s.applyDecision(req, d, now)
		return
	}
	if len(s.pending) >= maxPendingRequests {
		s.sweepPending(now)
	}
	if len(s.pending) >= maxPendingRequests {
		// Too many answers outstanding: the client retransmits, and the
		// application sees this initiation again then.
		s.ep.drops.overload.Add(1)
		return
	}
	s.hstats.deferred.Add(1)
	s.pending[eph] = req
}

// open creates the half-open session for an accepted request and sends
// the response. Handshake loop only.
func (s *Server) open(req *ConnectRequest, acceptData []byte, now time.Time) {
	h, in, from := req.h, &req.h.in, req.remote
	id, err := s.ep.table.reserve(s.set.rng())
	if err != nil {
		return
	}
	token := handshake.ResetToken(&s.resetKey, id)
	resp, keys, err := h.writeAnswer(id, statusOK, req.fec, &token,
		s.set.answer(from, in.cipher, 0, acceptData))
	if err != nil {
		s.ep.table.remove(id)
		s.ep.drops.authFailed.Add(1)
		return
	}
	c, err := newSession(s.ep, id, &keys, in.cipher, req.fec, from, false, now, req.mtu)
	if err != nil {
		s.ep.table.remove(id)
		return
	}
	if in.hasPeerKey {
		s.stamps.Accept(in.peerKey, in.timestamp)
		c.peerKey, c.hasPeerKey = in.peerKey, true
	}
	c.connectData = in.connectData
	if in.ext && len(acceptData) > 0 {
		c.acceptData = append([]byte(nil), acceptData...)
	}
	c.ephemeral = req.eph
	c.response = resp
	c.cong.handshakeSent.Store(int64(now.Sub(s.ep.epoch)))
	c.source, c.sourceProven = req.src, req.proven
	s.halfMu.Lock()
	s.halfOpen[req.eph] = c
	s.sources.add(req.src, req.proven)
	s.halfMu.Unlock()
	s.ep.table.set(id, c)
	c.shard.post(c) // schedules the half-open expiry
	s.completed.Add(1)
	s.tr.initiationAnswered(id, from, in.cipher, req.fec.data, req.fec.parity)
	_ = s.ep.writeTo(resp, from)
}

// admits applies the client key policy. Config.Identity.AuthorizeClient is
// application code running on the handshake loop: a panic there must not
// take the process down, nor let the client in. It counts as a refusal (the
// client gets ErrClientRejected), is logged with its stack and is counted
// in ServerStats.CallbackPanics.
func (s *Server) admits(in *initiation) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.ep.callbackPanicked("AuthorizeClient", 0, r)
			ok = false
		}
	}()
	return s.set.identity.admits(in)
}

// onUnknownSession runs on the read loop for a transport packet whose session ID
// is unknown: if the rate limits allow, it answers with a stateless reset
// so a client of a previous run of this server learns at once that its
// session is gone.
func (s *Server) onUnknownSession(pkt []byte, from netip.AddrPort) {
	r, ok := s.resets.Answer(pkt, from, time.Now())
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
	if s.set.maxSessions <= 0 && s.lst == nil {
		return false
	}
	s.halfMu.Lock()
	n := len(s.halfOpen)
	s.halfMu.Unlock()
	if s.lst != nil && s.lst.backlogFull(n) {
		// The same protection for a Listener's backlog: half-open
		// sessions count against it, so only sources that prove their
		// address may add more.
		return true
	}
	return s.set.maxSessions > 0 && int(s.sessions.Load())+n >= s.set.maxSessions
}

// sourceFull reports whether src holds MaxSessionsPerSource sessions,
// half-open ones included.
func (s *Server) sourceFull(src [16]byte) bool {
	s.halfMu.Lock()
	defer s.halfMu.Unlock()
	return s.sources.full(src, s.set.admission.perSource)
}

// onAdmit runs on the session's shard when the client's first packet
// authenticated, before onEstablished. It takes one of the MaxSessions slots
// (and a Listener's backlog slot), and refuses with a close code when
// other half-open sessions were confirmed first and took the last ones
// (MaxSessions is a hard bound on established sessions), or when the
// server began to shut down.
func (s *Server) onAdmit(c *Conn) uint16 {
	// The client's first packet authenticated: its handshake is complete,
	// whether or not a slot is left. The handshake loop took the
	// initiation handshakeTimeout before the half-open deadline newConn
	// set; onAdmit has no now of its own, and a clock read per handshake is
	// cheap.
	s.hsConfirmed.Add(1)
	s.hsLatency.observe(time.Since(c.handshakeBy.Add(-s.set.handshakeTimeout)))
	if s.refusing.Load() {
		return CloseServerShutdown
	}
	if s.lst != nil && !s.lst.reserve() {
		s.hstats.refusedFull.Add(1)
		return CloseServerFull
	}
	for max := int64(s.set.maxSessions); ; {
		n := s.sessions.Load()
		if max > 0 && n >= max {
			s.hstats.refusedFull.Add(1)
			if s.lst != nil {
				s.lst.waiting.Add(-1)
			}
			return CloseServerFull
		}
		if s.sessions.CompareAndSwap(n, n+1) {
			return CloseNormal
		}
	}
}

// onEstablished runs on the session's shard when the client's first packet
// authenticated and onAdmit took a slot for it.
func (s *Server) onEstablished(c *Conn) {
	s.halfMu.Lock()
	delete(s.halfOpen, c.ephemeral)
	if !c.sourceProven {
		// The client received our response there: its address is real.
		s.sources.prove(c.source)
		c.sourceProven = true
	}
	if len(s.confirmed) < maxHalfOpen {
		s.confirmed[c.ephemeral] = time.Now().Add(s.set.handshakeTimeout)
	}
	s.halfMu.Unlock()
	s.accepted.Add(1)
	s.live.add(c)
	if s.refusing.Load() {
		// Shutdown began after onAdmit and may have missed this session in
		// its snapshot of live: close it here (Shutdown stores refusing
		// before it reads live, and this reads refusing after the add).
		c.requestClose(CloseServerShutdown, "server shutdown", true)
	}
	defer c.recoverCallback("OnNewConnComing")
	s.handler.OnNewConnComing(c)
}

// onConnClosed runs on the session's shard once the session ended.
func (s *Server) onConnClosed(c *Conn, err error, announced bool) {
	s.halfMu.Lock()
	s.sources.remove(c.source, c.sourceProven)
	if !announced && s.halfOpen[c.ephemeral] == c {
		delete(s.halfOpen, c.ephemeral)
	}
	s.halfMu.Unlock()
	if !announced {
		return
	}
	s.sessions.Add(-1)
	s.live.remove(c)
	notify(s.ended)
	defer func() {
		if r := recover(); r != nil {
			// The session has already ended: only log and count.
			s.ep.callbackPanicked("OnConnClosed", c.id, r)
		}
	}()
	s.handler.OnConnClosed(c, err)
}
