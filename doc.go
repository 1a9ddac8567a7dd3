// Package uxp provides reliable, ordered, encrypted message sessions over
// UDP, for game and live-streaming servers.
//
// A session starts with a one-round-trip Noise NK handshake
// (Noise_NK_25519_ChaChaPoly_BLAKE2s) in which the client authenticates the
// server by its pinned static public key. Every later datagram is sealed with
// the cipher the handshake negotiated (AES-256-GCM when both ends have AES
// instructions, else ChaCha20-Poly1305; Salsa20-Poly1305 when pinned in
// Config.Cipher) under a per-direction key, with the packet counter as the nonce and a replay window on the
// receiving side. Reliability and ordering come from KCP (kcp-go's state
// machine, in message mode), so each Conn.Write arrives as one
// OnNewDataComing call. docs/protocol.md is the wire specification,
// docs/architecture.md describes the goroutines and who owns what, and
// docs/security.md the threat model.
//
// # Usage
//
// A server needs a static key pair (GenerateKey, or ParsePrivateKey on the
// output of `uxp keygen`); clients pin its public key. Handlers embed
// NopServerHandler and NopHandler and override what they need:
//
//	type echoServer struct{ uxp.NopServerHandler }
//
//	func (echoServer) OnNewConnComing(c *uxp.Conn) { c.SetHandler(echoConn{}) }
//
//	type echoConn struct{ uxp.NopHandler }
//
//	// data is only valid during the call; Write copies it.
//	func (echoConn) OnNewDataComing(c *uxp.Conn, data []byte) {
//		if _, err := c.Write(data); err != nil {
//			c.Close()
//		}
//	}
//
//	func serve(ctx context.Context, priv uxp.PrivateKey) error {
//		pc, err := net.ListenPacket("udp", ":4000")
//		if err != nil {
//			return err
//		}
//		srv, err := uxp.NewServer(pc, echoServer{}, &uxp.Config{PrivateKey: priv})
//		if err != nil {
//			pc.Close() // the Server owns pc only once NewServer succeeded
//			return err
//		}
//		if err := srv.Start(); err != nil {
//			srv.Close()
//			return err
//		}
//		<-ctx.Done() // e.g. from signal.NotifyContext(ctx, os.Interrupt)
//		return srv.Close()
//	}
//
// A client dials with the server's public key. Dial returns once the
// session is established and OnReady has run:
//
//	cl, err := uxp.Dial(ctx, "game.example.com:4000", handler, &uxp.Config{ServerPublicKey: pub})
//	if err != nil {
//		return err // errors.Is(err, uxp.ErrHandshakeFailed) for a wrong key or no answer
//	}
//	defer cl.Close()
//	if _, err := cl.Conn().Write([]byte("hello")); err != nil {
//		return err // uxp.ErrWouldBlock: the send queue is full, try again later
//	}
//
// NewClient with Client.Start does the same on a PacketConn the caller
// provides. A nil *Config means DefaultConfig; the zero value of each field
// means its default.
//
// To use a session as a byte stream instead, Listen returns a net.Listener
// whose Accept gives net.Conns (*StreamConn), and DialConn (or DialConnOver,
// on the caller's PacketConn) dials one. They run on the same sessions;
// StreamConn.Write blocks under backpressure until its deadline instead of
// returning ErrWouldBlock, and Read returns io.EOF after the peer's Close,
// once everything it wrote arrived. smux, yamux and net/http run over them
// unchanged.
//
// # Closing
//
// Conn.Close (and StreamConn.Close) returns at once. The session keeps
// delivering what was written for as long as the peer keeps acknowledging
// (Config.CloseLinger without progress ends it; 2 s by default, 60 s at
// most in all), then sends an authenticated close frame. Only when every
// message was acknowledged is the end orderly: the peer's OnClosed gets a
// *CloseError with CloseNormal and its stream reads io.EOF. Otherwise the
// code is CloseAbandoned, an error on both sides (Conn.Err after Conn.Done).
// Conn.CloseWithError sends an application's code and reason. The SDK's
// own ends carry their code too (CloseServerShutdown, CloseIdleTimeout,
// CloseProtocolError, ...). Server.Shutdown drains every session before it
// stops; Server.Close ends them at once. Listener.Close stops accepting and
// leaves accepted streams alone, as TCP does.
//
// For a game server's loop: Conn.SetUserData keeps per-session state on
// the session and Server.Conn finds a session by ID; Server.Broadcast (and
// BroadcastLane, BroadcastDatagram, BroadcastDatagramLatest) sends one
// message to many sessions, copied once and sealed per session on its own
// worker, reporting per session what failed; Conn.Quality reads RTT,
// jitter, rates, loss and queued bytes from atomics, cheap enough for
// every tick; WritableHandler.OnWritable and Conn.WaitWritable are the
// partners of ErrWouldBlock. A PollGroup replaces callbacks altogether:
// its handler copies each event into a pooled buffer and queues it, and
// the game loop drains the queue with PollGroup.Poll on its own goroutine,
// so game state needs no lock (see sample/gameserver). A server bound to
// the IPv6 wildcard address ("[::]:4000") serves IPv4 and IPv6 clients on
// one socket where the operating system allows it, as Linux does by
// default.
//
// Optional handler interfaces (LaneHandler, DatagramHandler,
// WritableHandler, MigrationHandler) are found by type assertion, so a
// misspelled method compiles and is never called. Assert them where the
// handler is defined:
//
//	var _ uxp.DatagramHandler = (*myHandler)(nil)
//
// Messages that found no method for them are counted in ConnStats.Unhandled
// and a warning is logged once per session.
//
// A client can send application data in its handshake (Config.ConnectData:
// a connect token, a player name, up to 1000 bytes, encrypted), and a
// server decides about each client before any session exists by
// implementing ConnectHandler on its ServerHandler: accept (with optional
// accept data back), reject with a code and reason (the client's Start
// fails with a *RejectError), or defer and answer later from another
// goroutine (ConnectRequest.Accept, ConnectRequest.Reject):
//
//	func (s *game) OnConnectRequest(req *uxp.ConnectRequest) uxp.ConnectDecision {
//		if len(req.ConnectData()) == 0 {
//			return uxp.RejectConnect(1, "name required")
//		}
//		return uxp.AcceptConnect([]byte("room 7"))
//	}
//
// The handshake also compares the two sides' lane counts and packet sizes
// (Config.Lanes, Config.KCP.MTU): the session uses the smaller packet size
// (Conn.MTU), and lanes that differ fail Start with an *IncompatibleError.
//
// # Concurrency
//
// A Server runs one read loop, one handshake loop and Config.Workers update
// workers (shards); a Client runs one read loop and one worker. A session has
// no goroutine of its own: the worker it is assigned to (by session ID) owns
// its KCP, crypto, replay and heartbeat state and serves all its deadlines
// from one timer heap.
//
// Every method of Server, Client and Conn is safe for concurrent use. Handler
// callbacks run on the session's worker, one at a time per session, with no
// uxp lock held. Conn.Write and Conn.Close may be called from inside them:
// they queue the work and wake the worker, and never wait for it. Server.Close
// and Client.Close wait for the workers, so they must not be called from a
// callback. A callback that blocks stalls every session of its worker. A
// panic in a callback closes only that callback's session, with a
// *CallbackPanicError.
//
// Conn.Write never blocks: beyond Config.SendQueueBytes it returns
// ErrWouldBlock and queues nothing; OnWritable follows once, when the queue
// has drained to half. Every error that ends a session unwraps to
// net.ErrClosed.
//
// A PollGroup's handler runs on the workers like any other, but only
// copies and queues; PollGroup.Poll is meant for one goroutine, the game
// loop, and each event's Data stays valid until its Release. A full poll
// group holds reliable messages back in the sender's lanes and drops
// datagrams (counted).
//
// # Limitations
//
//   - By default clients are anonymous (Noise NK): any holder of the
//     server's public key can open a session. Give clients static keys
//     (Config.Identity, Noise IK) or authenticate users inside the session.
//   - Under a handshake flood the server answers with cookie replies and
//     rate-limits each source; a flood from many real addresses can still
//     use up its single handshake goroutine. Handshakes are bounded by a
//     queue of 1024 and at most 65536 half-open sessions.
//   - Sessions rekey in band every Config.RekeyAfterTime (2 minutes) and
//     Config.RekeyAfterPackets; a session ends with ErrCounterExhausted
//     rather than reuse a nonce, after about 2^64 packets in one direction.
//   - A server session follows a client whose address changes (NAT
//     rebinding) once the new address answered an encrypted path challenge
//     (see MigrationHandler); clients never follow a change of the server's
//     address. A server that restarted tells clients of its old sessions
//     with a stateless reset (ErrStatelessReset); a client that restarted is
//     noticed by the server only at its idle timeout.
//   - Both sides must configure the same number of lanes; the handshake
//     refuses a difference with an *IncompatibleError. Datagrams bypass
//     KCP's send window and are not paced.
//   - Deadlines (Conn.WriteWithDeadline, LaneConfig.Deadline) rest on the
//     heartbeat's RTT estimate: a message stops being sent half an RTT
//     (plus half the RTT variation) before its deadline, and the receiver
//     skips one that completes after its deadline as estimated on its own
//     clock. Asymmetric paths or jitter beyond the RTT variation blur both
//     by a few milliseconds. Until the first heartbeat answer the receiver
//     cannot convert deadlines to its clock, so they are enforced only by
//     the sender (whose margin uses the handshake's RTT sample).
//   - Each session has a congestion controller (Config.CongestionControl,
//     model-based by default) that windows and paces everything it sends;
//     CongestionNone turns that off. Its bandwidth estimate, and so
//     BandwidthHandler, wait for the first delivery-rate samples from the
//     acknowledgements. Datagrams the pacer cannot send within 50 ms are
//     dropped (DatagramStats.Dropped). On paths with a round trip below
//     about 1.5 ms (a LAN, loopback) the window in flight is about 3 ms of
//     the estimated bandwidth, so up to about 3 ms of queue builds at the
//     bottleneck.
//   - Path MTU discovery (Conn.PathMTU) starts every session at 1200-byte
//     packets and probes up to the smaller of the two sides' Config.KCP.MTU
//     (by default what a 1500-byte Ethernet MTU carries: 1472 bytes over
//     IPv4, 1452 over IPv6); a peer from before it keeps the session at
//     1200. A path that carries less than 1200 bytes needs a smaller MTU
//     configured. uxp's own sockets and a *net.UDPConn never fragment on
//     Linux (a probe larger than the path is lost); with another
//     net.PacketConn, or on another system, fragmentation is up to it. Probes lost on purpose count as loss in the FEC loss
//     estimate.
//   - Connect data needs a server of this version: an older one drops the
//     longer initiation and the client's Start times out.
//   - The close packet is repeated, backing off from 50 ms, until the peer
//     confirms it, for at most 7 repetitions or 4 s; if all of them are
//     lost the peer ends the session at its idle timeout (an error, never
//     io.EOF).
//
// # Security
//
// uxp protects the confidentiality and integrity of every message, the
// server's identity (a client that pins the wrong key fails the handshake
// with ErrHandshakeFailed and sends no data), and replay within and across
// sessions (fresh ephemeral keys per session, counters checked by a
// 8128-packet window). Optionally clients prove a static key of their own
// (Config.Identity: Noise IK, with an allow-list or callback on the server,
// and an optional pre-shared key). Under handshake load (or with
// Config.MaxSessions nearly taken) the server does no Diffie-Hellman for a
// source until it has echoed a WireGuard-style cookie, and rate-limits each
// source (Config.Admission, which also bounds the sessions of one source);
// with a pre-shared key, an initiation without it is dropped at mac1, before
// any Diffie-Hellman; a panicking AuthorizeClient refuses the client instead
// of crashing; handshakes never amplify; MaxSessions counts established sessions
// only, so half-open handshakes cannot fill it; and a restarted server
// resets its old sessions statelessly (at most 10 resets a second). An
// authenticated peer is held to what it negotiated and this side configured:
// FEC shard counts, KCP fragment counts, the advertised receive window, and
// a per-session receive budget (min(lanes, 2) × 9/8 of KCP.RecvWindow
// segments; 16 FEC groups); repeated ACKs no longer reach KCP, so a datagram
// cannot make it walk its send buffer more than once per segment sent. The cipher choice is bound into the handshake, so an
// attacker cannot downgrade it. Keys come from crypto/rand and X25519; nothing
// secret is hard-coded. See docs/security.md for the threat model, what is
// not protected yet, and the tests that back each claim. Report
// vulnerabilities privately to the maintainers rather than in a public issue.
package uxp
