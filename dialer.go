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

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/sockio"
	"github.com/uxp-go/uxp/internal/wire"
)

// Dialer runs many client sessions over one PacketConn: one socket, one
// read loop and one pool of update workers (Config.Workers) for all of
// them, to one server or to several that share Config.ServerPublicKey. It
// is for processes that hold many sessions as a client: load generators,
// bots, a game server connected to many backends. A Client is the
// one-session form, with a socket of its own.
//
// Incoming packets are routed by session ID, which each server chooses;
// should two servers choose the same ID for sessions of one Dialer, Dial
// runs a new handshake (at most dialIDRetries times). All methods are safe
// for concurrent use.
type Dialer struct {
	dialSide // the endpoint events only a server acts on

	set       *settings
	ep        *endpoint
	tr        tracer
	cookieKey [32]byte // immutable
	hstats    handshakeCounters

	mu       sync.Mutex
	attempts map[uint32]*clientAttempt // handshakes in progress, by sender index
	started  bool
	closed   bool
}

// DialerStats is a snapshot of a Dialer's counters. Each session has its
// own ConnStats.
type DialerStats struct {
	Sessions int // live sessions
	// Drops counts datagrams dropped before they reached a session:
	// unknown session IDs, stray or forged handshake answers, garbage.
	Drops     DropStats
	Handshake HandshakeStats

	// Traffic totals over every session the Dialer ran, closed ones
	// included (see ConnStats for each field).
	BytesSent, BytesReceived       uint64
	PacketsSent, PacketsReceived   uint64
	MessagesSent, MessagesReceived uint64
	Retransmissions                uint64
	SendsTooBig                    uint64
	// RTT is the distribution of the live sessions' smoothed RTTs,
	// sessions without a sample yet left out.
	RTT Histogram
	// SessionsClosed counts ended sessions by close reason, one entry per
	// CloseReasons name.
	SessionsClosed []CloseCount
	// KCPFastPath is as in ServerStats.
	KCPFastPath bool
}

/* Implementation constants */
const dialIDRetries = 3

// NewDialer prepares a Dialer on pc. cfg must hold the server's public key
// (Config.ServerPublicKey); its client-side fields apply to every session.
// The Dialer owns pc from the first Dial on and closes it in Close.
func NewDialer(pc net.PacketConn, cfg *Config) (*Dialer, error) {
	set, err := clientSettings("NewDialer", pc, cfg)
	if err != nil {
		return nil, err
	}
	d := &Dialer{
		set:       set,
		cookieKey: handshake.LabelKey(handshake.CookieLabel, set.serverPublicKey),
		tr:        newTracer(set.tracer, true),
		attempts:  make(map[uint32]*clientAttempt),
	}
	d.ep = newEndpoint(pc, set, set.workers, d)
	d.ep.batchRead = true // many sessions share the socket: read in batches, as a server does
	return d, nil
}

// Dial runs a handshake with the server at server and returns the session
// once it is established and OnReady has returned. handler receives the
// session's events; nil means NopHandler. It fails like Client.Start, and
// with ErrConnClosed once the Dialer is closed; a failed Dial leaves the
// Dialer and its other sessions as they were.
func (d *Dialer) Dial(ctx context.Context, server net.Addr, handler ConnHandler) (*Conn, error) {
	ap := sockio.AddrPort(server)
	if !ap.IsValid() || ap.Port() == 0 {
		return nil, fmt.Errorf("uxp: Dial: server address %v is not a UDP address", server)
	}
	if handler == nil {
		handler = NopHandler{}
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrConnClosed
	}
	if !d.started {
		d.started = true
		if !d.ep.start() {
			d.mu.Unlock()
			return nil, ErrConnClosed
		}
	}
	d.mu.Unlock()
	for try := 1; ; try++ {
		conn, err := d.dialOnce(ctx, ap, handler)
		if errors.Is(err, errSessionIDTaken) && try < dialIDRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		return conn, nil
	}
}

// dialOnce runs one handshake.
func (d *Dialer) dialOnce(ctx context.Context, server netip.AddrPort, handler ConnHandler) (*Conn, error) {
	a := newClientAttempt(d.set, d.ep, server, handler, &d.tr, &d.cookieKey, &d.hstats)
	a.register = d.ep.table.setIfAbsent
	d.mu.Lock()
	var index uint32
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			d.mu.Unlock()
			return nil, err
		}
		index = binary.LittleEndian.Uint32(b[:])
		if _, used := d.attempts[index]; index != 0 && !used {
			break
		}
	}
	d.attempts[index] = a
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.attempts, index)
		d.mu.Unlock()
	}()
	hs, err := a.newHandshake(index)
	if err != nil {
		return nil, err
	}
	return a.run(ctx, hs)
}

// attempt returns the handshake in progress with sender index index.
func (d *Dialer) attempt(index uint32) *clientAttempt {
	d.mu.Lock()
	a := d.attempts[index]
	d.mu.Unlock()
	return a
}

// onResponse runs on the read loop.
func (d *Dialer) onResponse(b []byte, from netip.AddrPort) bool {
	a := d.attempt(wire.ResponseHeader(b).ReceiverIndex())
	if a == nil {
		d.ep.drops.malformed.Add(1) // no such handshake in progress
		return true
	}
	a.takeResponse(b, from)
	return true
}

// onControl runs on the read loop for cookie replies and stateless
// resets. It owns bp.
func (d *Dialer) onControl(bp *packetBuf, n int, from netip.AddrPort) bool {
	if bp[0] == wire.MsgReset {
		d.ep.takeReset(bp, n, from, &d.hstats)
		return true
	}
	if a := d.attempt(wire.ResponseHeader(bp[:]).SessionID()); a != nil && n >= 8 { // a cookie reply: the sender index
		a.takeCookie(bp[:n])
	} else {
		d.ep.drops.malformed.Add(1)
	}
	putPacketBuf(bp)
	return true
}

// Close closes every session (messages already written are still
// delivered while the servers acknowledge them, Config.CloseLinger), waits
// for them to end, up to the linger's hard cap, stops the Dialer's
// goroutines and closes its PacketConn. Do not call it from a callback.
// Dials in progress fail with ErrConnClosed. Close is idempotent.
func (d *Dialer) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	started := d.started
	d.mu.Unlock()
	if !started {
		return d.ep.pc.Close()
	}
	closeAndWait(d.ep.table.live())
	d.ep.stop()
	d.ep.wg.Wait()
	return nil
}

// Stats returns the Dialer's counters.
func (d *Dialer) Stats() DialerStats {
	st := DialerStats{
		Sessions:  d.ep.table.count(),
		Drops:     d.ep.drops.snapshot(),
		Handshake: d.hstats.snapshot(),
	}
	d.ep.addEndpointStats(&st)
	return st
}

// LocalAddr returns the address of the Dialer's PacketConn.
func (d *Dialer) LocalAddr() net.Addr { return d.ep.pc.LocalAddr() }

// setIfAbsent enters c under id unless the ID is taken or reserved.
func (t *sessionTable) setIfAbsent(id uint32, c *Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, used := t.m[id]; used {
		return false
	}
	t.m[id] = c
	return true
}

// count returns how many live sessions are in the table: not those that
// ended and only repeat their close frame (draining).
func (t *sessionTable) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, c := range t.m {
		if c != nil && !isClosed(c.done) {
			n++
		}
	}
	return n
}

// live returns the sessions in the table.
func (t *sessionTable) live() []*Conn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	conns := make([]*Conn, 0, len(t.m))
	for _, c := range t.m {
		if c != nil {
			conns = append(conns, c)
		}
	}
	return conns
}
