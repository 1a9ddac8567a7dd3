package uxp

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
//
// This file is pure: the caller passes in now and the random source.

/* Specification constants */
const (
	cookieReplySize  = 64
	cookieNonceSize  = chacha20poly1305.NonceSizeX
	cookieLabel      = "cookie--"
	cookieSecretLife = 2 * time.Minute // also how long a client keeps a cookie
)

// No amplification: a cookie reply is shorter than any initiation.
var _ = [initiationSize - cookieReplySize]struct{}{}

// cookieChecker is the server's cookie state. It is owned by the handshake
// loop, the only goroutine that touches it.
type cookieChecker struct {
	encKey   [32]byte // BLAKE2s-256("cookie--" || server public key)
	secret   [32]byte
	secretAt time.Time // zero: no secret yet
	rng      io.Reader
}

func newCookieChecker(server PublicKey, rng io.Reader) *cookieChecker {
	return &cookieChecker{encKey: labelKey(cookieLabel, server), rng: rng}
}

// cookie returns the cookie for addr, first replacing a secret older than
// cookieSecretLife.
func (cc *cookieChecker) cookie(addr netip.AddrPort, now time.Time) ([macSize]byte, error) {
	if cc.secretAt.IsZero() || now.Sub(cc.secretAt) >= cookieSecretLife || now.Before(cc.secretAt) {
		if _, err := io.ReadFull(cc.rng, cc.secret[:]); err != nil {
			return [macSize]byte{}, err
		}
		cc.secretAt = now
	}
	var a [18]byte
	ip := addr.Addr().As16()
	copy(a[:16], ip[:])
	binary.LittleEndian.PutUint16(a[16:], addr.Port())
	return keyedMAC(cc.secret[:], a[:]), nil
}

// validMAC2 reports whether an initiation that passed checkInitiation
// carries the mac2 of a current cookie for addr.
func (cc *cookieChecker) validMAC2(pkt []byte, addr netip.AddrPort, now time.Time) bool {
	if cc.secretAt.IsZero() || now.Sub(cc.secretAt) >= cookieSecretLife {
		return false // no cookie we gave out is still valid
	}
	c, err := cc.cookie(addr, now)
	if err != nil {
		return false
	}
	mac := keyedMAC(c[:], pkt[:mac2Offset(pkt)])
	return subtle.ConstantTimeCompare(mac[:], pkt[mac2Offset(pkt):]) == 1
}

// reply builds the cookie reply to an initiation (which passed
// checkInitiation) from addr.
func (cc *cookieChecker) reply(pkt []byte, addr netip.AddrPort, now time.Time) ([cookieReplySize]byte, error) {
	var r [cookieReplySize]byte
	c, err := cc.cookie(addr, now)
	if err != nil {
		return r, err
	}
	r[0] = wire.MsgCookieReply
	copy(r[4:8], pkt[4:8])
	nonce := r[8 : 8+cookieNonceSize]
	if _, err := io.ReadFull(cc.rng, nonce); err != nil {
		return r, err
	}
	aead, err := chacha20poly1305.NewX(cc.encKey[:])
	if err != nil {
		return r, err
	}
	aead.Seal(r[8+cookieNonceSize:8+cookieNonceSize], nonce, c[:], pkt[mac1Offset(pkt):mac2Offset(pkt)])
	return r, nil
}

// openCookieReply is the client side: it authenticates a cookie reply to
// the initiation init (as sent, with its mac1) and returns the cookie.
// encKey is BLAKE2s-256("cookie--" || server public key).
func openCookieReply(b []byte, init []byte, encKey *[32]byte) ([macSize]byte, error) {
	var c [macSize]byte
	if len(b) != cookieReplySize || b[0] != wire.MsgCookieReply || b[1]|b[2]|b[3] != 0 {
		return c, errHandshakeMalformed
	}
	if subtle.ConstantTimeCompare(b[4:8], init[4:8]) != 1 {
		return c, errHandshakeMalformed
	}
	aead, err := chacha20poly1305.NewX(encKey[:])
	if err != nil {
		return c, err
	}
	out, err := aead.Open(c[:0], b[8:8+cookieNonceSize], b[8+cookieNonceSize:], init[mac1Offset(init):mac2Offset(init)])
	if err != nil || len(out) != macSize {
		return c, errHandshakeAuth
	}
	return c, nil
}

// putMAC2 writes mac2 for cookie into an initiation (mac1 already set).
func putMAC2(pkt []byte, cookie *[macSize]byte) {
	mac := keyedMAC(cookie[:], pkt[:mac2Offset(pkt)])
	copy(pkt[mac2Offset(pkt):], mac[:])
}
