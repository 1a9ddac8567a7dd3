package handshake

import (
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/uxp-go/uxp/internal/wire"
)

// Stateless reset (after RFC 9000 section 10.3). The server gives the
// client a 16-byte reset token, encrypted, in the handshake response. The
// token is derived from the server's static private key and the session ID
// alone, so a server that restarted with the same key, and so lost every
// session, can still compute it. When such a server receives a transport
// packet for a session it does not know, it answers with a reset
// (wire.PutReset):
//
//	reset key = BLAKE2s-256("reset---" || server static private key)
//	token     = BLAKE2s-128(key = reset key, session id (u32 LE))
//
// A client that receives a reset for its session with the right token ends
// the session. The reset (24 bytes) is shorter than any transport packet
// (at least 33), so it cannot amplify, and it is only ever sent in reply
// to a transport packet, never to a reset, so two endpoints cannot bounce
// resets between them.

var _ = [wire.MinTransportSize - wire.ResetSize - 1]struct{}{} // a reset is always smaller than its trigger

/* Implementation constants */
const (
	// Resets per second, and burst, per source (IPv4 address or IPv6 /64).
	ResetRate  = 5
	ResetBurst = 5
	// ResetGlobalRate bounds resets per second over all sources. A reset
	// answers any session ID, so it is an oracle for that ID's token
	// (security.md): the global rate is what bounds how fast anyone can
	// collect tokens. At 10/s, collecting the tokens of 1 % of the 2^32
	// session IDs takes about 50 days of flooding that also disables resets
	// for everyone else. A restarted server needs only one reset per client.
	ResetGlobalRate = 10
	resetSources    = 1 << 14
)

// ResetKey derives the reset key from the server's static private key.
func ResetKey(static [32]byte) [32]byte { return hash256([]byte(ResetLabel), static[:]) }

// ResetToken is the reset token of a session.
func ResetToken(key *[32]byte, sessionID uint32) [wire.ResetTokenSize]byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], sessionID)
	return KeyedMAC(key[:], b[:])
}

// ResetMatches reports, in constant time, whether a reset carries want.
func ResetMatches(got, want *[wire.ResetTokenSize]byte) bool {
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// ResetSender decides whether a transport packet for an unknown session
// gets a reset. Its owner is the server's read loop.
type ResetSender struct {
	key    [32]byte
	perIP  *RateLimiter
	global *RateLimiter
	anySrc netip.Addr
}

// NewResetSender returns the reset state of the server with this static
// private key.
func NewResetSender(static [32]byte) *ResetSender {
	return &ResetSender{
		key:    ResetKey(static),
		perIP:  NewRateLimiter(ResetRate, ResetBurst, resetSources),
		global: NewRateLimiter(ResetGlobalRate, ResetGlobalRate, 1),
		anySrc: netip.IPv4Unspecified(),
	}
}

// Answer returns the reset for a transport packet pkt (whose header
// parsed) from addr, or false when none may be sent.
func (r *ResetSender) Answer(pkt []byte, from netip.AddrPort, now time.Time) ([wire.ResetSize]byte, bool) {
	var out [wire.ResetSize]byte
	if len(pkt) <= wire.ResetSize || pkt[0] != wire.MsgTransport {
		return out, false // never answer a reset, nor anything not larger than one
	}
	// The global budget is checked first, and spent last: a source gets a
	// bucket in perIP only when a reset could be sent, so spoofed sources
	// cannot fill perIP faster than the global rate, and a source that is
	// over its own limit spends nothing of the global budget.
	if !r.global.Ready(r.anySrc, now) || !r.perIP.Allow(from.Addr(), now) || !r.global.Allow(r.anySrc, now) {
		return out, false
	}
	id := wire.TransportHeader(pkt).Receiver()
	tok := ResetToken(&r.key, id)
	wire.PutReset(&out, id, &tok)
	return out, true
}

// Sources is how many sources the per-source limiter tracks (tests).
func (r *ResetSender) Sources() int { return r.perIP.Len() }
