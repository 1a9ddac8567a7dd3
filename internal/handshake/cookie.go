package handshake

import (
	"crypto/subtle"
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/uxp-go/uxp/internal/wire"
)

// Cookie replies, as in WireGuard (whitepaper section 5.4.7). A server
// under handshake load does not do Diffie-Hellman for an initiation whose
// mac2 is not valid; it answers with a cookie reply instead:
//
//	 0      1..3   4                    8                     32             48        64
//	+------+------+--------------------+---------------------+--------------+---------+
//	| 3    | rsv  | receiver idx (u32) | nonce (24)          | cookie (16)  | tag (16)|
//	+------+------+--------------------+---------------------+--------------+---------+
//
// receiver idx is the initiation's sender index. The cookie is sealed with
// XChaCha20-Poly1305 under key BLAKE2s-256("cookie--" || server public
// key), with the initiation's mac1 as associated data, so only the client
// that sent that initiation (or someone who saw it) can use the reply.
//
//	cookie = BLAKE2s-128(key = secret, IP (16, IPv4 mapped) || port (u16 LE))
//	mac2   = BLAKE2s-128(key = cookie, initiation[:len-16])
//
// The secret is 32 random bytes, replaced every two minutes. The client
// keeps a cookie for two minutes and puts mac2 on every initiation it sends
// to that server meanwhile.

/* Specification constants */
const (
	CookieReplySize  = 64
	CookieNonceSize  = chacha20poly1305.NonceSizeX
	CookieSecretLife = 2 * time.Minute // also how long a client keeps a cookie
)

// CookieChecker is the server's cookie state. Its owner is the server's
// handshake loop, the only goroutine that touches it. Every initiation it
// is given passed the mac1 check, so it is at least 2×MACSize+8 bytes.
type CookieChecker struct {
	encKey   [32]byte // BLAKE2s-256("cookie--" || server public key)
	secret   [32]byte
	secretAt time.Time // zero: no secret yet
	rng      io.Reader
}

// NewCookieChecker returns the cookie state of the server with this public
// key. rng supplies the secrets and nonces (crypto/rand in production).
func NewCookieChecker(server [32]byte, rng io.Reader) *CookieChecker {
	return &CookieChecker{encKey: LabelKey(CookieLabel, server), rng: rng}
}

// Cookie returns the cookie for addr, first replacing a secret older than
// CookieSecretLife.
func (cc *CookieChecker) Cookie(addr netip.AddrPort, now time.Time) ([MACSize]byte, error) {
	if cc.secretAt.IsZero() || now.Sub(cc.secretAt) >= CookieSecretLife || now.Before(cc.secretAt) {
		if _, err := io.ReadFull(cc.rng, cc.secret[:]); err != nil {
			return [MACSize]byte{}, err
		}
		cc.secretAt = now
	}
	var a [18]byte
	ip := addr.Addr().As16()
	copy(a[:16], ip[:])
	binary.LittleEndian.PutUint16(a[16:], addr.Port())
	return KeyedMAC(cc.secret[:], a[:]), nil
}

// ValidMAC2 reports whether an initiation that passed the mac1 check
// carries the mac2 of a current cookie for addr.
func (cc *CookieChecker) ValidMAC2(pkt []byte, addr netip.AddrPort, now time.Time) bool {
	if cc.secretAt.IsZero() || now.Sub(cc.secretAt) >= CookieSecretLife {
		return false // no cookie we gave out is still valid
	}
	c, err := cc.Cookie(addr, now)
	if err != nil {
		return false
	}
	mac := KeyedMAC(c[:], pkt[:MAC2Offset(pkt)])
	return subtle.ConstantTimeCompare(mac[:], pkt[MAC2Offset(pkt):]) == 1
}

// Reply builds the cookie reply to an initiation (which passed the mac1
// check) from addr.
func (cc *CookieChecker) Reply(pkt []byte, addr netip.AddrPort, now time.Time) ([CookieReplySize]byte, error) {
	var r [CookieReplySize]byte
	c, err := cc.Cookie(addr, now)
	if err != nil {
		return r, err
	}
	r[0] = wire.MsgCookieReply
	copy(r[4:8], pkt[4:8])
	nonce := r[8 : 8+CookieNonceSize]
	if _, err := io.ReadFull(cc.rng, nonce); err != nil {
		return r, err
	}
	aead, err := chacha20poly1305.NewX(cc.encKey[:])
	if err != nil {
		return r, err
	}
	aead.Seal(r[8+CookieNonceSize:8+CookieNonceSize], nonce, c[:], pkt[MAC1Offset(pkt):MAC2Offset(pkt)])
	return r, nil
}

// OpenCookieReply is the client side: it authenticates a cookie reply to
// the initiation init (as sent, with its mac1) and returns the cookie.
// encKey is BLAKE2s-256("cookie--" || server public key).
func OpenCookieReply(b []byte, init []byte, encKey *[32]byte) ([MACSize]byte, error) {
	var c [MACSize]byte
	if len(b) != CookieReplySize || b[0] != wire.MsgCookieReply || b[1]|b[2]|b[3] != 0 {
		return c, ErrMalformed
	}
	if subtle.ConstantTimeCompare(b[4:8], init[4:8]) != 1 {
		return c, ErrMalformed
	}
	aead, err := chacha20poly1305.NewX(encKey[:])
	if err != nil {
		return c, err
	}
	out, err := aead.Open(c[:0], b[8:8+CookieNonceSize], b[8+CookieNonceSize:], init[MAC1Offset(init):MAC2Offset(init)])
	if err != nil || len(out) != MACSize {
		return c, ErrAuth
	}
	return c, nil
}
