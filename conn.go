package uxp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp/internal/arq"
	"github.com/uxp-go/uxp/internal/replay"
)

type connState uint8

const (
	stateHalfOpen    connState = iota // server: response sent, waiting for the client's first packet
	stateEstablished                  // carrying messages
	stateClosing                      // Close called: flushing queued messages, then the close packet (conn_close.go)
	stateClosed
)

// Conn is one session: a reliable, ordered, encrypted message channel to a
// peer. Write, Close, ID, RemoteAddr, LocalAddr, Stats and SetHandler are
// safe to call from any goroutine, callbacks included.
type Conn struct {
	// Its state is grouped by owner: connFixed is immutable once the
	// session is in the tables; connPosted is guarded by mu (what other
	// goroutines hand to the shard); connShared is atomics, written by the
	// shard and read anywhere; connShard, the rest, is owned by the update
	// worker (shard) the session is assigned to, and touched only on its
	// goroutine.
	connFixed
	connPosted
	connShared
	connShard

	ext connExt // user data, writability, broadcast, quality (userdata.go)

	// cong is the congestion controller (cc_session.go): its controller
	// is owned by the shard, its published view is read anywhere.
	cong congestionState
}

// connFixed is set at creation and immutable after.
type connFixed struct {
	id       uint32
	ep       *endpoint
	shard    *shard
	isClient bool
	cipher   Cipher
	done     chan struct{} // closed when the session has ended
	freed    chan struct{} // closed when it left every table (after draining)
	ready    chan struct{} // client: closed after OnReady returned

	// A client session's stateless reset token and the only address a
	// reset is accepted from; written before the session is in the
	// table, then immutable.
	resetToken [resetTokenSize]byte
	resetFrom  netip.AddrPort

	// Server half-open bookkeeping.
	ephemeral [noiseKeySize]byte
	response  []byte
	// Server: the source the session counts against
	// (AdmissionConfig.MaxSessionsPerSource); sourceProven is the one
	// field here that changes, guarded by Server.halfMu.
	source       [16]byte
	sourceProven bool

	// The peer's authenticated static key (identity.go).
	peerKey    PublicKey
	hasPeerKey bool

	// The session's packet size (negotiate.go) and the application data
	// of its handshake.
	mtu         int
	connectData []byte
	acceptData  []byte
}

// connPosted is what other goroutines post to the shard; guarded by mu.
type connPosted struct {
	mu        sync.Mutex
	pend      []byte // queued messages, each as u32 length + bytes
	pendBytes int
	closeReq  bool
	// closeCode and closeReason are what the close frame will carry
	// (CloseWithError, Server.Shutdown); closeSet says they were given.
	closeCode   uint16
	closeReason string
	closeSet    bool
	err         error // why the session ended; set once
	posted      bool  // on the shard's ready list; guarded by shard.mu, not mu
}

// connShared is written by the shard (or, where noted, posted by another
// goroutine) and read from any goroutine.
type connShared struct {
	handler atomic.Pointer[handlerBox]
	remote  atomic.Pointer[net.UDPAddr] // for RemoteAddr; remoteAP is the shard's copy

	kcpQueued atomic.Int64 // estimate of bytes inside KCP
	// overloadAt is when (unix ns) the read loop last dropped a datagram
	// of this session because its worker was saturated: the idle timer
	// counts it as heard (overloadHeard). Written by the read loop.
	overloadAt atomic.Int64
	// segBytes is the memory of the KCP segment buffers the session's
	// lanes hold, sending and receiving (noteQueued).
	segBytes atomic.Int64
	// recvResume asks the shard to drain KCP's receive queue again after a
	// flowHandler's buffer was full (see deliver). Posted by the reader.
	recvResume atomic.Bool
	// wndOpen asks the shard to lift recvWndCap (Listener.Accept).
	wndOpen   atomic.Bool
	traffic   trafficCounters
	drops     dropCounters
	rtt       atomic.Int64
	rttVar    atomic.Int64
	fecParity atomic.Int64
	lossIn    atomic.Int64 // 1/10000
	lossOut   atomic.Int64 // 1/10000
	latency   histogramCounters
	pathMTU   atomic.Int32  // PMTUD's current size, for PathMTU and MaxDatagramSize
	fragsSent atomic.Uint64 // inner frames sent fragmented (tests)
	// fecSized says the lanes' KCPs size their segments with the FEC
	// room reserved (fec_sizing.go); Conn.kcpMTU and the stream
	// adapter's segment size follow it. Written on the shard.
	fecSized atomic.Bool
	// fecDirect counts frames meant for FEC that were sent directly,
	// outside it, because they were too large for a shard (tests).
	fecDirect atomic.Uint64
}

// connShard is owned by the shard: only its goroutine touches it.
type connShard struct {
	state       connState
	added       bool
	touched     bool
	heapIndex   int
	deadline    time.Time
	timerRan    time.Time // when onTimer last ran: reschedule's floor
	remoteAP    netip.AddrPort
	arq         arq.Lanes  // made with the session; lane counters are read by Stats (lanes.go)
	keys        rekeyState // transport keys, by generation (rekey.go)
	path        pathState  // server: validation of a new peer address (path.go)
	sendCounter uint64     // runs on across rekeys
	exhausted   bool       // sendCounter reached replay.RejectAfter
	replay      replay.Window
	hb          heartbeat
	dataRTT     rttEstimator  // data round trips, for tail probes (lanes.go pto)
	recU        []laneRecordU // per lane: una and wnd the peer holds (record_u.go)
	handshakeBy time.Time     // stateHalfOpen: drop the session if not confirmed by then
	// rekeyWait is when a postponed rekey tries again, and rekeyDeferrals
	// how often it was postponed (rekey_sched.go).
	rekeyWait      time.Time
	rekeyDeferrals uint32
	// stateClosing (conn_close.go): when the peer last acknowledged
	// something, and the hard end of the linger.
	lingerProgress time.Time
	lingerCap      time.Time
	lingerQueued   int // l.queued and waitSnd totals at the last progress
	lingerSegs     int
	// recvWndCap, when non-zero, is the receive window the lanes' KCPs
	// advertise instead of KCP.RecvWindow: a session waiting in a
	// Listener's backlog (listener.go). Set on the shard in
	// OnNewConnComing, cleared by openWindow's request.
	recvWndCap int
	// Draining (conn_close.go): the session ended after sending its close
	// frame, and stays in the tables, keys included, to send it again
	// until the peer confirms.
	draining     bool
	closeBody    []byte
	drainTries   int
	drainNext    time.Time
	drainUntil   time.Time
	drainSent    time.Time // last repetition
	pendSpare    []byte
	frameScratch []byte // one inner frame, for FEC
	// deliverForce is laneDeliver's force while the lanes deliver.
	deliverForce bool
	latest       *latestState
	dgrams       datagramCounters
	lastPong     time.Time // client: when the last pong arrived
	lastPongTS   uint64    // client: the server timestamp it carried
	peerTS       uint64    // the peer's clock in its last ping or pong (laneIO.PeerDeadline)
	peerAt       time.Time // when that ping or pong arrived
	fec          fecState
	tr           tracer
	// Path MTU discovery (pmtud.go).
	pmtu   pmtuState
	fragID uint16
	frag   *fragState
}

type handlerBox struct{ h ConnHandler }

func newConn(ep *endpoint, id uint32, keys *sessionKeys, cipher Cipher, fp fecParams, remote netip.AddrPort, isClient bool, now time.Time) (*Conn, error) {
	return newSession(ep, id, keys, cipher, fp, remote, isClient, now, ep.set.mtuFor(remote))
}

// newSession is newConn for a session whose packet size is mtu: the
// smaller of the two sides' (negotiate.go).
func newSession(ep *endpoint, id uint32, keys *sessionKeys, cipher Cipher, fp fecParams, remote netip.AddrPort, isClient bool, now time.Time, mtu int) (*Conn, error) {
	set := ep.set
	c := &Conn{
		connFixed: connFixed{
			mtu:      mtu,
			id:       id,
			ep:       ep,
			shard:    ep.shardFor(id),
			isClient: isClient,
			cipher:   cipher,
			done:     make(chan struct{}),
			freed:    make(chan struct{}),
			ready:    make(chan struct{}),
		},
		connShard: connShard{heapIndex: -1, remoteAP: remote},
	}
	c.sendCounter = set.hooks.startCounter
	if err := c.initKeys(keys, now); err != nil {
		return nil, err
	}
	c.remote.Store(net.UDPAddrFromAddrPort(remote))
	c.handler.Store(&handlerBox{NopHandler{}})
	c.hb = newHeartbeat(set.heartbeat, set.idleTimeout, isClient, now)
	c.tr = newTracer(set.tracer, isClient)
	if isClient {
		c.state = stateEstablished
	} else {
		c.state = stateHalfOpen
		c.handshakeBy = now.Add(set.handshakeTimeout)
	}
	c.initPMTU(now)
	c.initCongestion()
	c.initLanes()
	c.initGate()
	if err := c.initFEC(fp, now); err != nil {
		return nil, err
	}
	return c, nil
}

// ID returns the session ID: random, unique on its server, and the KCP
// conversation number.
func (c *Conn) ID() uint32 { return c.id }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote.Load() }

// LocalAddr returns the address of the socket the session uses.
func (c *Conn) LocalAddr() net.Addr { return c.ep.pc.LocalAddr() }

// Cipher returns the AEAD the session's packets are sealed with.
func (c *Conn) Cipher() Cipher { return c.cipher }

// SetHandler sets the handler that receives this session's events. A
// server calls it in OnNewConnComing; a nil h restores the NopHandler.
func (c *Conn) SetHandler(h ConnHandler) {
	if h == nil {
		h = NopHandler{}
	}
	c.handler.Store(&handlerBox{h})
}

// Write queues msg as one reliable, ordered message and returns len(msg).
// The peer's OnNewDataComing receives it whole. Write never blocks: when
// the send queue holds Config.SendQueueBytes it returns ErrWouldBlock, and
// a message longer than Config.MaxMessageSize gets ErrMessageTooLarge;
// neither queues anything. Write copies msg, so the caller may reuse it.
// An empty msg sends nothing. After the session ended Write returns the
// error that ended it, which unwraps to net.ErrClosed.
func (c *Conn) Write(msg []byte) (int, error) {
	return c.write(pendReliable, 0, c.laneDeadline(0), msg)
}

// Kinds of queued writes, and the header each has in Conn.pend:
// u32 length | u8 kind | u8 lane or channel | i64 expiry (endpoint.mono,
// nanoseconds since the endpoint's epoch, timebase.go; 0 = none), then the
// message.
const (
	pendReliable byte = iota
	pendDatagram
	pendLatest

	pendHeaderSize = 14
)

// write queues one message for the shard.
func (c *Conn) write(kind byte, arg int, deadline int64, msg []byte) (int, error) {
	limit := c.ep.set.maxMessage
	if kind != pendReliable {
		limit = c.MaxDatagramSize()
	}
	if len(msg) > limit {
		return 0, ErrMessageTooLarge
	}
	c.mu.Lock()
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closeReq:
		c.mu.Unlock()
		return 0, ErrConnClosed
	case len(msg) == 0:
		c.mu.Unlock()
		return 0, nil
	}
	queued := c.pendBytes + int(c.kcpQueued.Load())
	if queued > 0 && queued+len(msg) > c.ep.set.sendQueue {
		c.ext.wr.blocked.Store(true) // writable.go: OnWritable is due once there is room
		c.mu.Unlock()
		return 0, ErrWouldBlock
	}
	c.pend = binary.LittleEndian.AppendUint32(c.pend, uint32(len(msg)))
	c.pend = append(c.pend, kind, byte(arg))
	c.pend = binary.LittleEndian.AppendUint64(c.pend, uint64(deadline))
	c.pend = append(c.pend, msg...)
	c.pendBytes += len(msg)
	c.mu.Unlock()
	c.shard.post(c)
	return len(msg), nil
}

// Stats returns a snapshot of the session's counters.
func (c *Conn) Stats() ConnStats {
	st := ConnStats{
		BytesSent:        c.traffic.bytesOut.Load(),
		BytesReceived:    c.traffic.bytesIn.Load(),
		PacketsSent:      c.traffic.packetsOut.Load(),
		PacketsReceived:  c.traffic.packetsIn.Load(),
		MessagesSent:     c.traffic.msgsOut.Load(),
		MessagesReceived: c.traffic.msgsIn.Load(),
		Retransmissions:  c.traffic.retrans.Load(),
		TailProbes:       c.traffic.probes.Load(),
		WindowProbes:     c.traffic.wndProbes.Load(),
		RTT:              time.Duration(c.rtt.Load()),
		RTTVar:           time.Duration(c.rttVar.Load()),
		Drops:            c.drops.snapshot(),
		Cipher:           c.cipher,
		LossIn:           float64(c.lossIn.Load()) / 10000,
		LossOut:          float64(c.lossOut.Load()) / 10000,
		FEC:              c.traffic.fecStats(),
		Latency:          c.latency.snapshot(),
		Migrations:       c.traffic.migrations.Load(),
		RemoteAddr:       c.RemoteAddr(),
		Rekeys:           c.traffic.rekeys.Load(),
		SendsTooBig:      c.traffic.sendsTooBig.Load(),
		Lanes:            c.laneStats(),
		Datagrams:        c.dgrams.snapshot(),
		Unhandled:        c.Unhandled(),
		Congestion:       c.congestionStats(),
		SendQueueDelay:   time.Duration(c.cong.sendQueueDelay.Load()),
	}
	st.FEC.Parity = int(c.fecParity.Load())
	st.SendQueueBytes = c.sendQueued()
	st.HeldBytes = st.SendQueueBytes + int(c.segBytes.Load())
	return st
}

// sendQueued is how many bytes the session holds for sending.
func (c *Conn) sendQueued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendBytes + int(c.kcpQueued.Load())
}

func (c *Conn) handlerFor() ConnHandler { return c.handler.Load().h }

// flowHandler is a ConnHandler that takes part in flow control; the stream
// adapter (stream.go) is the only one. Both methods are called on the
// session's shard with no SDK lock held and must not block.
type flowHandler interface {
	// recvFull reports that the handler will not take more data for now.
	// deliver then leaves messages in KCP's receive queue, which closes
	// the window KCP advertises; the handler calls Conn.resumeRecv once it
	// has room again.
	recvFull() bool
	// sendRoom is called whenever the send queue may have shrunk, so that
	// a writer blocked on ErrWouldBlock can retry.
	sendRoom()
}

// openWindow asks the shard to lift recvWndCap and to deliver what the
// stream refused meanwhile. Safe from any goroutine.
func (c *Conn) openWindow() {
	c.wndOpen.Store(true)
	c.recvResume.Store(true)
	c.shard.post(c)
}

// takeOpenWindow runs on the shard for openWindow. It first delivers with
// the small window still set: a full receive queue then makes KCP tell the
// peer at its next flush that the window reopened (kcp-go's fast recover),
// and the window it tells is the full one set just after.
func (c *Conn) takeOpenWindow() {
	if c.recvWndCap == 0 {
		return
	}
	c.deliverLanes(false)
	c.recvWndCap = 0
	c.arq.SetRecvWindowCap(0)
}

// resumeRecv asks the shard to deliver the messages a flowHandler refused
// while its buffer was full. Safe from any goroutine.
func (c *Conn) resumeRecv() {
	c.recvResume.Store(true)
	c.shard.post(c)
}
