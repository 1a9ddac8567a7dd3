package uxp

import (
	"net/netip"
)

// AdmissionConfig bounds what the sources of new sessions may take of a
// server: sessions per source address, and the handshake work a source may
// cause while the server is under handshake load. A source is an IPv4
// address or an IPv6 /64 (one subscriber usually holds a whole /64). The
// zero value is the defaults, chosen so that 1,024 clients behind one
// carrier-grade NAT address that dial at once all connect within the
// default HandshakeTimeout, while a flood from many spoofed sources still
// costs the server a bounded number of X25519 per second
// (docs/security.md). Ignored by clients.
type AdmissionConfig struct {
	// MaxSessionsPerSource bounds the sessions one source holds,
	// established and half-open (answered, not yet confirmed) together.
	// Once a source reaches it, its new initiations must carry a cookie
	// (mac2), which proves the source receives at its address; half-open
	// sessions that were created without that proof then no longer count
	// against it, so initiations forged in a victim's name cannot lock the
	// victim out (a source therefore holds at most MaxSessionsPerSource
	// proven sessions, confirmed or created with a cookie, and never more
	// than twice that in all). Beyond the bound an initiation is dropped
	// before any Diffie-Hellman and counted in
	// HandshakeStats.SourceLimited (the client's Start times out). Zero
	// means 4096. Negative means no per-source limit.
	MaxSessionsPerSource int

	// LoadThreshold is the number of initiations waiting in the server's
	// handshake queue (1,024 long) at which it goes under load: for the
	// next second it does Diffie-Hellman only for initiations with a
	// valid cookie (mac2), answers the others with a cookie reply, and
	// applies the per-source handshake rate below. Zero means 128.
	// Negative is invalid, and so is a value above 1024.
	LoadThreshold int

	// SourceHandshakeRate is how many handshakes per second one source
	// may start while the server is under load (a token bucket of
	// SourceHandshakeBurst). Zero means 256. Negative disables the
	// per-source rate limit (cookies are still required under load).
	SourceHandshakeRate int

	// SourceHandshakeBurst is the size of each source's token bucket.
	// Zero means 512. Negative is invalid.
	SourceHandshakeBurst int
}

/* Implementation defaults */
const (
	defaultMaxSessionsPerSource = 4096
	// underLoadQueueLen is the default LoadThreshold (wireguard-go:
	// QueueHandshakeSize/8).
	underLoadQueueLen = handshakeQueueLen / 8
	// Per-source Diffie-Hellman budget while under load, for initiations
	// that carry a valid mac2. wireguard-go allows 20 per second, burst 5,
	// per IP; a game server sees many players behind one carrier-grade NAT
	// address, so uxp allows a burst of 512 and 256 a second: 1,024
	// clients dialling at once from one address, each retransmitting at
	// 0.25, 0.75, 1.75 and 2.75 s, are all through by about 2 s. One
	// source's sustained budget is about 256 * 3 X25519 a second, some 2 %
	// of a core (3 % for Noise IK).
	handshakeRate  = 256
	handshakeBurst = 512
)

// admissionSettings is the resolved form of AdmissionConfig.
type admissionSettings struct {
	perSource     int // <= 0: no limit
	loadThreshold int
	rate          int // <= 0: no rate limit
	burst         int
}

func (c *AdmissionConfig) resolve() (admissionSettings, error) {
	a := admissionSettings{
		perSource:     pick(c.MaxSessionsPerSource, defaultMaxSessionsPerSource),
		loadThreshold: pick(c.LoadThreshold, underLoadQueueLen),
		rate:          pick(c.SourceHandshakeRate, handshakeRate),
		burst:         pick(c.SourceHandshakeBurst, handshakeBurst),
	}
	switch {
	case a.loadThreshold < 0 || a.loadThreshold > handshakeQueueLen:
		return a, &ConfigError{Field: "Admission.LoadThreshold", Reason: "outside [1, 1024]"}
	case a.burst < 0:
		return a, &ConfigError{Field: "Admission.SourceHandshakeBurst", Reason: "negative"}
	}
	return a, nil
}

// sourceSessions counts one source's sessions (established or half-open).
// proven ones came from an address that showed it receives there: the
// initiation carried a valid cookie, or the client confirmed the session
// (it received our response). unproven ones are half-open sessions created
// without a cookie, which a spoofer can create in anyone's name.
type sourceSessions struct {
	proven, unproven int
}

// sourceTable is the per-source session count. Guarded by Server.halfMu:
// the handshake loop adds, shards move and remove. An entry exists only
// while its source has a session, so the table is bounded by the sessions
// the server holds.
type sourceTable map[[16]byte]sourceSessions

// full reports whether src reached limit counting every session.
func (t sourceTable) full(src [16]byte, limit int) bool {
	n := t[src]
	return limit > 0 && n.proven+n.unproven >= limit
}

// admits reports whether src may get one more session. A proven source
// (valid cookie) is held back by its proven sessions, so that unproven
// ones forged in its name cannot lock it out; its own handshakes still
// waiting for their confirmation are unproven too, so in all a source
// never holds more than twice the limit.
func (t sourceTable) admits(src [16]byte, limit int, proven bool) bool {
	n := t[src]
	switch {
	case limit <= 0:
		return true
	case proven:
		return n.proven < limit && n.proven+n.unproven < 2*limit
	}
	return n.proven+n.unproven < limit
}

func (t sourceTable) add(src [16]byte, proven bool) {
	n := t[src]
	if proven {
		n.proven++
	} else {
		n.unproven++
	}
	t[src] = n
}

// prove moves one of src's sessions from unproven to proven.
func (t sourceTable) prove(src [16]byte) {
	if n, ok := t[src]; ok && n.unproven > 0 {
		n.unproven--
		n.proven++
		t[src] = n
	}
}

func (t sourceTable) remove(src [16]byte, proven bool) {
	n, ok := t[src]
	if !ok {
		return
	}
	if proven {
		n.proven--
	} else {
		n.unproven--
	}
	if n.proven <= 0 && n.unproven <= 0 {
		delete(t, src)
		return
	}
	t[src] = n
}

// sourceOf is the per-source key of a session's first address.
func sourceOf(ap netip.AddrPort) [16]byte { return sourceKey(ap.Addr()) }
