package uxp

import (
	"context"
	"log/slog"
	"net/netip"
)

// Per-session event trace. When Config.Tracer is set, the SDK logs one
// debug-level record for each step of a session's life: handshake steps,
// establishment, address changes, rekeys and the close reason. Every record
// carries "session" (the session ID, or 0 before the server assigned one)
// and "side" ("client" or "server"), so a trace can be filtered to one
// session.
//
// When Config.Tracer is nil, each trace point costs one inlined nil check:
// every trace method is a small guard the compiler inlines, with fixed,
// non-interface arguments (nothing is boxed or allocated at the call
// site), and the record is built in a separate xxxSlow function that only
// runs when tracing is on. BenchmarkTrace and TestTraceDisabledAllocs
// prove it.

// Trace event messages (the slog record's message). They are part of the
// documented trace format; see docs/architecture.md.
const (
	TraceInitiationSent   = "uxp: initiation sent"
	TraceInitiationAnswer = "uxp: initiation answered"
	TraceHandshakeRefused = "uxp: handshake refused"
	TraceHandshakeDone    = "uxp: handshake complete"
	TraceEstablished      = "uxp: session established"
	TraceAddressChanged   = "uxp: peer address changed"
	TraceMigrated         = "uxp: session migrated"
	TraceRekeyed          = "uxp: session rekeyed"
	TraceClosed           = "uxp: session closed"
	TracePathMTU          = "uxp: path MTU changed"
)

// pathMTU: path MTU discovery changed the session's packet size.
func (t *tracer) pathMTU(id uint32, mtu int) {
	if t.log != nil {
		t.pathMTUSlow(id, mtu)
	}
}

func (t *tracer) pathMTUSlow(id uint32, mtu int) {
	t.emit(TracePathMTU, id, slog.Int("mtu", mtu))
}

// tracer emits trace records. The zero value is disabled.
type tracer struct {
	log  *slog.Logger
	side string
}

func newTracer(l *slog.Logger, client bool) tracer {
	if l == nil {
		return tracer{}
	}
	side := "server"
	if client {
		side = "client"
	}
	return tracer{log: l, side: side}
}

func (t *tracer) emit(msg string, id uint32, attrs ...slog.Attr) {
	// Only reached when enabled, so building attrs here costs nothing on
	// the disabled path.
	all := make([]slog.Attr, 0, 2+len(attrs))
	all = append(all, slog.Uint64("session", uint64(id)), slog.String("side", t.side))
	all = append(all, attrs...)
	t.log.LogAttrs(context.Background(), slog.LevelDebug, msg, all...)
}

// initiationSent: a client sent (or re-sent) its handshake initiation.
func (t *tracer) initiationSent(attempt int, server netip.AddrPort) {
	if t.log != nil {
		t.initiationSentSlow(attempt, server)
	}
}

func (t *tracer) initiationSentSlow(attempt int, server netip.AddrPort) {
	t.emit(TraceInitiationSent, 0, slog.Int("attempt", attempt), slog.String("peer", server.String()))
}

// initiationAnswered: a server answered an initiation and holds the new
// session half-open until the client's first packet.
func (t *tracer) initiationAnswered(id uint32, peer netip.AddrPort, cipher Cipher, fecData, fecParity int) {
	if t.log != nil {
		t.initiationAnsweredSlow(id, peer, cipher, fecData, fecParity)
	}
}

func (t *tracer) initiationAnsweredSlow(id uint32, peer netip.AddrPort, cipher Cipher, fecData, fecParity int) {
	t.emit(TraceInitiationAnswer, id, slog.String("peer", peer.String()), slog.String("cipher", cipher.String()),
		slog.Int("fec_data", fecData), slog.Int("fec_parity", fecParity))
}

// handshakeRefused: an authenticated refusal (FEC policy), sent by a server
// or received by a client.
func (t *tracer) handshakeRefused(peer netip.AddrPort, err error) {
	if t.log != nil {
		t.handshakeRefusedSlow(peer, err)
	}
}

func (t *tracer) handshakeRefusedSlow(peer netip.AddrPort, err error) {
	t.emit(TraceHandshakeRefused, 0, slog.String("peer", peer.String()), slog.Any("err", err))
}

// handshakeDone: a client accepted the server's response.
func (t *tracer) handshakeDone(id uint32, peer netip.AddrPort, cipher Cipher, fecData, fecParity int) {
	if t.log != nil {
		t.handshakeDoneSlow(id, peer, cipher, fecData, fecParity)
	}
}

func (t *tracer) handshakeDoneSlow(id uint32, peer netip.AddrPort, cipher Cipher, fecData, fecParity int) {
	t.emit(TraceHandshakeDone, id, slog.String("peer", peer.String()), slog.String("cipher", cipher.String()),
		slog.Int("fec_data", fecData), slog.Int("fec_parity", fecParity))
}

// established: the session carries messages (server: the client proved it
// holds the keys; client: the session was installed).
func (t *tracer) established(id uint32, peer netip.AddrPort) {
	if t.log != nil {
		t.establishedSlow(id, peer)
	}
}

func (t *tracer) establishedSlow(id uint32, peer netip.AddrPort) {
	t.emit(TraceEstablished, id, slog.String("peer", peer.String()))
}

// addressChanged: an authenticated, fresh packet came from a new address,
// which the session now challenges (path.go).
func (t *tracer) addressChanged(id uint32, from, to netip.AddrPort) {
	if t.log != nil {
		t.addressChangedSlow(id, from, to)
	}
}

func (t *tracer) addressChangedSlow(id uint32, from, to netip.AddrPort) {
	t.emit(TraceAddressChanged, id, slog.String("from", from.String()), slog.String("to", to.String()))
}

// rekeyed: the session switched its sending keys to a new generation.
func (t *tracer) rekeyed(id uint32, epoch uint64) {
	if t.log != nil {
		t.rekeyedSlow(id, epoch)
	}
}

func (t *tracer) rekeyedSlow(id uint32, epoch uint64) {
	t.emit(TraceRekeyed, id, slog.Uint64("epoch", epoch))
}

// migrated: the new address answered the challenge; replies go there now.
func (t *tracer) migrated(id uint32, from, to netip.AddrPort) {
	if t.log != nil {
		t.migratedSlow(id, from, to)
	}
}

func (t *tracer) migratedSlow(id uint32, from, to netip.AddrPort) {
	t.emit(TraceMigrated, id, slog.String("from", from.String()), slog.String("to", to.String()))
}

// closed: the session ended. reason is the close code sent or received,
// byPeer says who ended it, and err is what OnClosed receives (nil for a
// half-open session that expired unannounced).
func (t *tracer) closed(id uint32, err error, reason uint16, byPeer, announced bool) {
	if t.log != nil {
		t.closedSlow(id, err, reason, byPeer, announced)
	}
}

func (t *tracer) closedSlow(id uint32, err error, reason uint16, byPeer, announced bool) {
	t.emit(TraceClosed, id, slog.Any("err", err), slog.String("reason", closeCodeName(reason)),
		slog.Bool("by_peer", byPeer), slog.Bool("announced", announced))
}
