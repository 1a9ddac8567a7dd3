package uxp

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp/internal/sockio"
	"github.com/uxp-go/uxp/internal/wire"
)

// endpoint is the machinery a Server and a Client share: the socket, the
// read loop, the session table and the update workers (shards).
//
// Goroutines: readLoop (one), one loop per shard, plus what the owner adds
// (the Server's handshake loop). All of them stop when closing is closed;
// wg joins them.
type endpoint struct {
	set   *settings
	pc    net.PacketConn
	sock  sockio.Socket // pc: reads and writes (allocation-free on a *net.UDPConn)
	log   *slog.Logger
	epoch time.Time // origin of the int64 time base (timebase.go) and of the clock in pings and pongs

	shards []*shard
	table  sessionTable
	drops  dropCounters // drops before a session is known
	// callbackPanics counts recovered panics of application callbacks
	// (callback_panic.go).
	callbackPanics atomic.Uint64
	// x25519 counts the X25519 ladders done for peers: handshakes
	// (server) and rekeys. Tests bound handshake and rekey work with it.
	x25519 atomic.Uint64

	closes    closeCounters     // sessions ended, by close reason (close_stats.go)
	unhandled unhandledCounters // messages no handler method took (unhandled.go)

	// owner is the Server, Client or Dialer that runs this endpoint; the
	// read loop and the shards call up into it (endpoint_owner.go).
	owner    endpointOwner
	draining atomic.Int64 // sessions draining

	closing    chan struct{}
	closeOnce  sync.Once // closes closing
	runMu      sync.Mutex
	running    bool      // start launched the goroutines; guarded by runMu
	stopping   bool      // stop was called; start then launches nothing; guarded by runMu
	socketOnce sync.Once // closes pc
	wg         sync.WaitGroup
	readErr    error           // set by readLoop before it exits
	gsoOff     atomic.Bool     // set when the socket refused a GSO send; shared by the shards' senders
	batchRead  bool            // set by the owner before start: read in batches (servers always do)
	batch      *sockio.Reader  // servers and Dialers on Linux: recvmmsg (with GRO); nil reads one datagram per call
	staged     []*inboundBatch // per shard: datagrams of the current read; read loop only
	// readID and readConn are the session the current read's last
	// transport datagram went to (lookup); read loop only, forgotten by
	// flushStaged.
	readID   uint32
	readConn *Conn
}

func newEndpoint(pc net.PacketConn, set *settings, workers int, owner endpointOwner) *endpoint {
	ep := &endpoint{
		set:     set,
		owner:   owner,
		pc:      pc,
		log:     set.logger,
		epoch:   time.Now(),
		closing: make(chan struct{}),
	}
	if ep.log == nil {
		ep.log = slog.New(slog.DiscardHandler)
	}
	ep.table.m = make(map[uint32]*Conn)
	ep.sock = sockio.NewSocket(pc, set.socketBuffer)
	ep.shards = make([]*shard, workers)
	for i := range ep.shards {
		ep.shards[i] = newShard(ep, i)
	}
	if _, err := ep.shards[0].kcp.FastPath(); err != nil {
		// Every shard's factory passed the same gate (internal/kcpx).
		ep.log.Warn("uxp: kcp-go fast path off, using kcp-go's public API (sends wait for KCP's interval tick, more memory per session)", "err", err)
	}
	ep.staged = make([]*inboundBatch, workers)
	return ep
}

// start launches the read loop and the shards. It reports false, and
// launches nothing, once stop has been called.
func (ep *endpoint) start() bool {
	ep.runMu.Lock()
	defer ep.runMu.Unlock()
	if ep.stopping {
		return false
	}
	ep.running = true
	if ep.batchRead {
		// Only servers and Dialers read in batches, with GRO: the batch reader's 512 KiB of slots
		// is too much for each of many Clients, a Client receives little,
		// and a server or a Dialer is where many flows, and many packets
		// of one flow, meet.
		ep.batch = sockio.NewReader(&ep.sock, true, maxDatagram, 0)
	}
	for _, s := range ep.shards {
		ep.wg.Add(1)
		go func() {
			defer ep.wg.Done()
			s.loop()
		}()
	}
	ep.wg.Add(1)
	go func() {
		defer ep.wg.Done()
		ep.readErr = ep.readLoop()
		// A dead socket ends everything; closing twice is harmless.
		ep.stop()
	}()
	return true
}

// stop signals every goroutine to finish, lets the shards send their close
// packets, then closes the socket to unblock the read loop. It does not
// join; use ep.wg for that. Before start (an owner that failed early) or
// instead of it, there are no shards to wait for: stop then only closes the
// socket, and a later start launches nothing.
func (ep *endpoint) stop() {
	ep.runMu.Lock()
	ep.stopping = true
	running := ep.running
	ep.runMu.Unlock()
	ep.signalClose()
	if running {
		for _, s := range ep.shards {
			<-s.done
		}
	}
	ep.closeSocket()
}

// stopFromShard is stop for a caller running on the endpoint's only shard,
// which cannot wait for itself. It has already sent what it had to send.
func (ep *endpoint) stopFromShard() {
	ep.signalClose()
	ep.closeSocket()
}

func (ep *endpoint) signalClose() { ep.closeOnce.Do(func() { close(ep.closing) }) }

func (ep *endpoint) closeSocket() { ep.socketOnce.Do(func() { ep.pc.Close() }) }

func (ep *endpoint) shardFor(id uint32) *shard {
	return ep.shards[int(id%uint32(len(ep.shards)))]
}

// packetBuf is a pooled receive buffer: rxRoom bytes of room, then the
// datagram (dgram). Ownership passes with the packet: whoever finishes
// with it calls putPacketBuf. The room lets a session expand the compact
// segment records of a KCP frame in place (arq.Lanes.InputRecords): the
// segments kcp-go reads are longer than the records.
type packetBuf [rxRoom + maxDatagram]byte

// dgram is the part of b a datagram is read into.
func (b *packetBuf) dgram() []byte { return b[rxRoom:] }

var packetPool = sync.Pool{New: func() any { return new(packetBuf) }}

func getPacketBuf() *packetBuf { return packetPool.Get().(*packetBuf) }

func putPacketBuf(b *packetBuf) { packetPool.Put(b) }

// writeTo sends one datagram now, bypassing the shards' send batches:
// handshake replies and other packets of the read loop or a handshake
// worker.
func (ep *endpoint) writeTo(b []byte, to netip.AddrPort) error { return ep.sock.WriteTo(b, to) }

// readLoop reads datagrams and routes them by type and session ID, never
// by address, without allocating. It returns nil when the endpoint is
// closing and the socket's error otherwise.
func (ep *endpoint) readLoop() error {
	for {
		if done, err := ep.readOnce(); done {
			return err
		}
	}
}

// readOnce reads and dispatches one datagram, or one batch of datagrams
// and runs the kernel merged (sockio.Reader), then hands the shards their
// transport datagrams. done reports that the read loop must end, with err.
func (ep *endpoint) readOnce() (done bool, err error) {
	defer ep.flushStaged()
	if r := ep.batch; r != nil {
		n, err := r.Read()
		if err != nil {
			if sockio.NoBatchIO(err) {
				ep.batch = nil // no recvmmsg in this kernel: read one by one
				return false, nil
			}
			return ep.readFailed(err)
		}
		for i := range n {
			b, seg, from, trunc := r.Message(i)
			if trunc || len(b) == 0 {
				ep.drops.malformed.Add(1) // larger than any datagram we accept, or empty
				continue
			}
			// Split merged datagrams; each gets its own pooled buffer
			// because ownership passes to the shard per datagram.
			for len(b) > 0 {
				n := min(seg, len(b), maxDatagram)
				bp := getPacketBuf()
				copy(bp.dgram(), b[:n])
				ep.dispatch(bp, n, from)
				b = b[min(seg, len(b)):]
			}
		}
		return false, nil
	}
	bp := getPacketBuf()
	n, from, err := ep.sock.Read(bp.dgram())
	if err != nil {
		putPacketBuf(bp)
		return ep.readFailed(err)
	}
	ep.dispatch(bp, n, from)
	return false, nil
}

// readFailed decides what a read error means: the endpoint is closing (nil),
// the socket is dead (the error), or a per-datagram error to skip.
func (ep *endpoint) readFailed(err error) (bool, error) {
	select {
	case <-ep.closing:
		return true, nil
	default:
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil // someone set a read deadline on our socket; keep serving
	}
	if errors.Is(err, net.ErrClosed) {
		return true, err
	}
	// ICMP port unreachable and similar per-datagram errors must not take
	// the whole endpoint down; a client in its handshake fails on the
	// first (onReadError).
	ep.log.Debug("uxp: read error", "err", err)
	ep.owner.onReadError(err)
	select {
	case <-ep.closing:
		return true, nil
	case <-time.After(time.Millisecond):
	}
	return false, nil
}

func (ep *endpoint) dispatch(bp *packetBuf, n int, from netip.AddrPort) {
	b := bp.dgram()
	if n < 1 || n > ep.set.mtu && b[0] == wire.MsgTransport {
		ep.drops.malformed.Add(1)
		putPacketBuf(bp)
		return
	}
	switch b[0] {
	case wire.MsgTransport:
		h, ok := parseTransportHeader(b[:n])
		if !ok {
			ep.drops.malformed.Add(1)
			break
		}
		c := ep.lookup(h.receiver())
		if c == nil {
			ep.drops.unknownSession.Add(1)
			ep.owner.onUnknownSession(b[:n], from)
			break
		}
		ep.stage(c, bp, n, from) // handed to the shard after this read
		return
	case wire.MsgInitiation:
		if ep.owner.onInitiation(bp, n, from) {
			return
		}
		ep.drops.malformed.Add(1)
	case wire.MsgCookieReply, wire.MsgReset:
		if ep.owner.onControl(bp, n, from) {
			return
		}
		ep.drops.malformed.Add(1)
	case wire.MsgResponse:
		if ep.owner.onResponse(b[:n], from) {
			break
		}
		ep.drops.malformed.Add(1)
	default:
		ep.drops.malformed.Add(1)
	}
	putPacketBuf(bp)
}

// lookup returns the session with ID id, as the table has it, for the
// read loop. The datagrams of one read mostly go to one session (a GRO
// run is one sender's), so the last session found is remembered until
// the read is handed off (flushStaged) and the table's read lock, a shared atomic
// per datagram, is taken once per session per read. A session that
// leaves the table meanwhile gets the rest of the read's datagrams as if
// they had been looked up just before it left: its shard drops them as
// for a closed session (Conn.receive), as it does for any datagram
// routed just before the session ended.
func (ep *endpoint) lookup(id uint32) *Conn {
	if id == ep.readID && ep.readConn != nil {
		return ep.readConn
	}
	c := ep.table.get(id)
	if c != nil {
		ep.readID, ep.readConn = id, c
	}
	return c
}

// sessionTable maps session IDs to sessions. The read loop looks up every
// datagram here; writers are the handshake path and the shards.
type sessionTable struct {
	mu sync.RWMutex
	m  map[uint32]*Conn // a nil value reserves an ID during a handshake
}

func (t *sessionTable) get(id uint32) *Conn {
	t.mu.RLock()
	c := t.m[id]
	t.mu.RUnlock()
	return c
}

// reserve picks a random, unused, non-zero session ID from rng
// (crypto/rand outside tests: settings.rng).
func (t *sessionTable) reserve(rng io.Reader) (uint32, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(rng, b[:]); err != nil {
			return 0, err
		}
		id := binary.LittleEndian.Uint32(b[:])
		if id == 0 {
			continue
		}
		t.mu.Lock()
		_, used := t.m[id]
		if !used {
			t.m[id] = nil
		}
		t.mu.Unlock()
		if !used {
			return id, nil
		}
	}
}

func (t *sessionTable) set(id uint32, c *Conn) {
	t.mu.Lock()
	t.m[id] = c
	t.mu.Unlock()
}

func (t *sessionTable) remove(id uint32) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}
