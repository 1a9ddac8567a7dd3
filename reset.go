package uxp

import (
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"

	"golang.org/x/crypto/blake2s"

	"github.com/uxp-go/uxp/internal/wire"
)

// Stateless reset (after RFC 9000 section 10.3). The server gives the
// client a 16-byte reset token, encrypted, in the handshake response. The
// token is derived from the server's static private key and the session ID
// alone, so a server that restarted with the same key, and so lost every
// session, can still compute it. When such a server receives a transport
// packet for a session it does not know, it answers with:
//
//	 0      1..3   4                  8                       24
//	+------+------+------------------+-----------------------+
//	| 5    | rsv  | session id (u32) | reset token (16)      |
//	+------+------+------------------+-----------------------+
//
//	reset key = BLAKE2s-256("reset---" || server static private key)
//	token     = BLAKE2s-128(key = reset key, session id (u32 LE))
//
// A client that receives a reset for its session with the right token ends
// the session with ErrStatelessReset. The reset (24 bytes) is shorter than
// any transport packet (at least 33), so it cannot amplify, and it is only
// ever sent in reply to a transport packet, never to a reset, so two
// endpoints cannot bounce resets between them.

/* Specification constants */
const (
	resetSize  = wire.ResetSize
	resetLabel = "reset---"
)

var _ = [wire.MinTransportSize - resetSize - 1]struct{}{} // a reset is always smaller than its trigger

/* Implementation constants */
const (
	// Resets per second, and burst, per source (IPv4 address or IPv6 /64).
	resetRate  = 5
	resetBurst = 5
	// resetGlobalRate bounds resets per second over all sources. A reset
	// answers any session ID, so it is an oracle for that ID's token
	// (security.md): the global rate is what bounds how fast anyone can
	// collect tokens. At 10/s, collecting the tokens of 1 % of the 2^32
	// session IDs takes about 50 days of flooding that also disables resets
	// for everyone else. A restarted server needs only one reset per client.
	resetGlobalRate = 10
	resetSources    = 1 << 14
)

func resetKey(static PrivateKey) [32]byte {
	h, _ := blake2s.New256(nil)
	h.Write([]byte(resetLabel))
	h.Write(static[:])
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func resetToken(key *[32]byte, sessionID uint32) [resetTokenSize]byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], sessionID)
	return keyedMAC(key[:], b[:])
}

func putReset(b *[resetSize]byte, sessionID uint32, token *[resetTokenSize]byte) {
	wire.PutReset(b, sessionID, token)
}

// parseReset checks a reset's size and reserved bytes and returns its
// session ID and token (wire.ParseReset).
func parseReset(b []byte) (uint32, [resetTokenSize]byte, bool) { return wire.ParseReset(b) }

// resetMatches reports, in constant time, whether a reset carries want.
func resetMatches(got, want *[resetTokenSize]byte) bool {
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// resetSender decides whether a transport packet for an unknown session
// gets a reset. It is owned by the read loop.
type resetSender struct {
	key    [32]byte
	perIP  *rateLimiter
	global *rateLimiter
	anySrc netip.Addr
}

func newResetSender(static PrivateKey) *resetSender {
	return &resetSender{
		key:    resetKey(static),
		perIP:  newRateLimiter(resetRate, resetBurst, resetSources),
		global: newRateLimiter(resetGlobalRate, resetGlobalRate, 1),
		anySrc: netip.IPv4Unspecified(),
	}
}

// answer returns the reset for a transport packet pkt (whose header
// parsed) from addr, or false when none may be sent.
func (r *resetSender) answer(pkt []byte, from netip.AddrPort, now time.Time) ([resetSize]byte, bool) {
	var out [resetSize]byte
	if len(pkt) <= resetSize || pkt[0] != wire.MsgTransport {
		return out, false // never answer a reset, nor anything not larger than one
	}
	// The global budget is checked first, and spent last: a source gets a
	// bucket in perIP only when a reset could be sent, so spoofed sources
	// cannot fill perIP faster than the global rate, and a source that is
	// over its own limit spends nothing of the global budget.
	if !r.global.ready(r.anySrc, now) || !r.perIP.allow(from.Addr(), now) || !r.global.allow(r.anySrc, now) {
		return out, false
	}
	id := transportHeader(pkt).receiver()
	tok := resetToken(&r.key, id)
	putReset(&out, id, &tok)
	return out, true
}
