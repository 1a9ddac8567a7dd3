package uxp

import (
	"strconv"

	"github.com/flynn/noise"
)

// IdentityConfig configures who may connect: optional client static keys
// (Noise IK) and an optional pre-shared key (Noise psk2). Its zero value
// is what uxp did before: anonymous clients (Noise NK), no pre-shared key,
// every client accepted.
type IdentityConfig struct {
	// ClientPrivateKey is a client's static X25519 key. When set, the
	// handshake is Noise IK: the client proves it holds this key, and the
	// server sees the matching public key (Conn.PeerKey) before deciding
	// whether to accept it. Zero means an anonymous client (Noise NK).
	// Ignored by servers.
	ClientPrivateKey PrivateKey

	// PresharedKey, when not all zero, is mixed into the handshake (Noise
	// psk2) as a second secret besides the static keys. Both sides must
	// hold the same key: a server with one accepts only clients that have
	// it, and a mismatch means the client never gets a response it can
	// decrypt, so its Start fails with ErrHandshakeFailed. Zero means no
	// pre-shared key. Generate one with GenerateKey and use its Private
	// half.
	PresharedKey [KeySize]byte

	// AllowedClientKeys, on a server, lists the client public keys that
	// may connect. Nil or empty means no list (see AuthorizeClient). A
	// client whose key is refused gets an authenticated refusal: its Start
	// fails with ErrClientRejected. Ignored by clients.
	AllowedClientKeys []PublicKey

	// AuthorizeClient, on a server, decides about client keys that are not
	// in AllowedClientKeys. Nil means none is accepted that way. It is
	// called on the server's handshake goroutine, one call at a time and
	// with no SDK lock held, before any state exists for the client; it
	// must return quickly. A panic in it is recovered and counts as a
	// refusal: it is logged with its stack and counted in
	// ServerStats.CallbackPanics. Ignored by clients.
	AuthorizeClient func(key PublicKey) bool

	// RequireClientKey, on a server, refuses anonymous (Noise NK) clients
	// even when no key list or callback is set, so that any client with a
	// key of its own is accepted but anonymous ones are not. Setting
	// AllowedClientKeys or AuthorizeClient implies it. The zero value
	// accepts anonymous clients when there is no list and no callback.
	RequireClientKey bool
}

// identitySettings is the resolved form of IdentityConfig.
type identitySettings struct {
	static     *noise.DHKey // client: nil for anonymous
	clientPub  PublicKey
	psk        []byte // nil or KeySize bytes
	allowed    map[PublicKey]struct{}
	authorize  func(PublicKey) bool
	requireKey bool
}

func (c *IdentityConfig) resolve() (identitySettings, error) {
	var s identitySettings
	if !c.ClientPrivateKey.IsZero() {
		pub, err := c.ClientPrivateKey.PublicKey()
		if err != nil {
			return s, &ConfigError{Field: "Identity.ClientPrivateKey", Reason: err.Error()}
		}
		s.clientPub = pub
		s.static = &noise.DHKey{Private: append([]byte(nil), c.ClientPrivateKey[:]...), Public: append([]byte(nil), pub[:]...)}
	}
	if !isZero(c.PresharedKey[:]) {
		s.psk = append([]byte(nil), c.PresharedKey[:]...)
	}
	if len(c.AllowedClientKeys) > 0 {
		s.allowed = make(map[PublicKey]struct{}, len(c.AllowedClientKeys))
		for i, k := range c.AllowedClientKeys {
			if k.IsZero() {
				return s, &ConfigError{Field: "Identity.AllowedClientKeys", Reason: "entry " + strconv.Itoa(i) + " is the zero key"}
			}
			s.allowed[k] = struct{}{}
		}
	}
	s.authorize = c.AuthorizeClient
	s.requireKey = c.RequireClientKey || s.allowed != nil || s.authorize != nil
	return s, nil
}

func (s *identitySettings) client() clientIdentity {
	return clientIdentity{static: s.static, psk: s.psk}
}

// admits applies the server's client policy to an initiation.
func (s *identitySettings) admits(in *initiation) bool {
	if !in.hasPeerKey {
		return !s.requireKey
	}
	if s.allowed == nil && s.authorize == nil {
		return true
	}
	if _, ok := s.allowed[in.peerKey]; ok {
		return true
	}
	return s.authorize != nil && s.authorize(in.peerKey)
}

// PeerKey returns the static public key the peer proved it holds in the
// handshake, and true; or false when there is none. On a server that is
// the client's key when it connected with Config.Identity.ClientPrivateKey
// (Noise IK); an anonymous client has none. On a client it is the server's
// static key. Safe from any goroutine.
func (c *Conn) PeerKey() (PublicKey, bool) { return c.peerKey, c.hasPeerKey }

// timestampTable enforces that the initiation timestamps of each client key
// strictly increase, so a replayed initiation is ignored (WireGuard's
// anti-replay for handshakes). It is owned by the handshake loop. It is
// bounded: past maxEntries keys, an arbitrary entry is forgotten, which
// re-opens replay of that one client's old initiations (docs/security.md).
type timestampTable struct {
	last       map[PublicKey]uint64
	maxEntries int
}

func newTimestampTable(maxEntries int) *timestampTable {
	return &timestampTable{last: make(map[PublicKey]uint64), maxEntries: maxEntries}
}

// fresh reports whether ts is newer than the last accepted one for key.
func (t *timestampTable) fresh(key PublicKey, ts uint64) bool {
	last, ok := t.last[key]
	return !ok || ts > last
}

// accept records ts for key.
func (t *timestampTable) accept(key PublicKey, ts uint64) {
	if _, ok := t.last[key]; !ok && len(t.last) >= t.maxEntries {
		for k := range t.last {
			delete(t.last, k)
			break
		}
	}
	t.last[key] = ts
}
