package uxp

import (
	"crypto/rand"
	"crypto/subtle"
	"net"
	"net/netip"
	"time"
)

// Connection migration (NAT rebinding, a phone moving from Wi-Fi to LTE),
// modelled on RFC 9000 section 9. docs/protocol.md section 5.6 is the
// normative description.
//
// Sessions are routed by session ID, never by address, so a client whose
// address changed still reaches its session. What must not follow the
// first packet from a new address is the server's replies: the packet may
// have been raced there by an on-path attacker, and the address may be a
// victim the attacker wants flooded. So the server
//
//  1. notes a candidate address only for a packet that authenticated and
//     passed the replay window (a replayed packet never gets this far);
//  2. sends the candidate an encrypted path challenge with a random token,
//     never more than pathAmplification times the bytes the candidate sent;
//  3. moves the session only when the matching path response arrives from
//     the candidate address itself.
//
// Until then replies keep going to the old address. Clients never follow
// a change of the server's address; they only answer challenges, to the
// server's address. All state here is owned by the shard.
//
// Path challenge (type 8) and path response (type 9) frames, 16-byte body:
//
//	| token (16) |

/* Specification constants */
const (
	framePathChallenge byte = 8
	framePathResponse  byte = 9
	pathTokenSize           = 16
)

/* Implementation constants */
const (
	// pathAmplification bounds what an unvalidated address receives: at
	// most this many times the bytes of authenticated packets it sent.
	pathAmplification = 3
	pathFirstRetry    = 200 * time.Millisecond
	// pathTimeout abandons a candidate that never answered; a later packet
	// from it starts over with a new token.
	pathTimeout = 3 * time.Second
)

// MigrationHandler is optionally implemented by a ConnHandler that wants
// to know when a server session moved to a new client address.
//
// Check at compile time that your handler implements it; a method with a
// misspelled name compiles and is never called:
//
//	var _ uxp.MigrationHandler = (*MyHandler)(nil)
type MigrationHandler interface {
	// OnMigrated is called on the session's update worker, with no SDK
	// lock held, after the session moved from one peer address to another
	// (both *net.UDPAddr) because the peer proved it receives at the new
	// one. Replies already go to the new address. It may call Write and
	// Close. A panic closes the session with a *CallbackPanicError.
	OnMigrated(c *Conn, from, to net.Addr)
}

// pathState is a server session's address validation in progress.
type pathState struct {
	candidate netip.AddrPort // zero: none
	token     [pathTokenSize]byte
	bytesIn   uint64 // authenticated bytes received from candidate
	bytesOut  uint64 // bytes sent to candidate
	retryAt   time.Time
	retryGap  time.Duration
	expireAt  time.Time
}

// notePath runs for every authenticated, fresh packet: one from an address
// other than the session's starts (or feeds) a validation of that address.
func (c *Conn) notePath(from netip.AddrPort, n int, now time.Time) {
	if c.isClient || from == c.remoteAP || !from.IsValid() {
		return
	}
	p := &c.path
	if p.candidate != from {
		if _, err := rand.Read(p.token[:]); err != nil {
			return
		}
		*p = pathState{candidate: from, token: p.token, retryGap: pathFirstRetry, expireAt: now.Add(pathTimeout)}
		c.tr.addressChanged(c.id, c.remoteAP, from)
	}
	p.bytesIn += uint64(n)
	if p.bytesOut == 0 || !now.Before(p.retryAt) {
		c.sendChallenge(now)
	}
}

// sendChallenge sends the candidate its token if the amplification budget
// allows; otherwise it waits for more bytes from the candidate.
func (c *Conn) sendChallenge(now time.Time) {
	p := &c.path
	size := uint64(transportOverhead + pathTokenSize)
	if p.bytesOut+size > pathAmplification*p.bytesIn {
		return
	}
	p.bytesOut += uint64(c.sendFrameTo(framePathChallenge, nil, p.token[:], p.candidate))
	p.retryAt = now.Add(p.retryGap)
	p.retryGap = min(2*p.retryGap, pathTimeout)
}

// pathTick retransmits a challenge or abandons a candidate.
func (c *Conn) pathTick(now time.Time) {
	p := &c.path
	if !p.candidate.IsValid() {
		return
	}
	if !now.Before(p.expireAt) {
		*p = pathState{}
		return
	}
	if !now.Before(p.retryAt) {
		c.sendChallenge(now)
	}
}

func (c *Conn) pathDeadline() time.Time {
	p := &c.path
	if !p.candidate.IsValid() {
		return time.Time{}
	}
	if p.bytesOut > 0 && p.retryAt.Before(p.expireAt) {
		return p.retryAt
	}
	return p.expireAt
}

// answerChallenge echoes a challenge's token to the peer's known address.
// A client answers only challenges that came from the server's address: a
// genuine one always does, while one relayed from elsewhere is an attacker
// trying to get the token answered so that it can race the answer from its
// own address and pull the session there.
func (c *Conn) answerChallenge(body []byte, from netip.AddrPort) {
	if len(body) != pathTokenSize || (c.isClient && from != c.remoteAP) {
		c.drop(dropMalformed)
		return
	}
	c.sendFrame(framePathResponse, body)
}

// takePathResponse moves the session if the response carries the
// outstanding token and came from the candidate address.
func (c *Conn) takePathResponse(body []byte, from netip.AddrPort) {
	p := &c.path
	if len(body) != pathTokenSize || c.isClient {
		c.drop(dropMalformed)
		return
	}
	if !p.candidate.IsValid() || from != p.candidate || subtle.ConstantTimeCompare(body, p.token[:]) != 1 {
		return // stale, or answered from elsewhere: not proof of this address
	}
	old := c.remoteAP
	c.remoteAP = from
	*p = pathState{}
	c.remote.Store(net.UDPAddrFromAddrPort(from))
	c.traffic.migrations.Add(1)
	c.shard.traffic.migrations.Add(1)
	c.tr.migrated(c.id, old, from)
	if h, ok := c.handlerFor().(MigrationHandler); ok {
		c.callMigrated(h, old, from)
	}
}

func (c *Conn) callMigrated(h MigrationHandler, from, to netip.AddrPort) {
	defer c.recoverCallback("OnMigrated")
	h.OnMigrated(c, net.UDPAddrFromAddrPort(from), net.UDPAddrFromAddrPort(to))
}
