package uxp

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/blake2s"

	ucrypto "github.com/uxp-go/uxp/crypto"
)

// The handshake is Noise NK (Noise_NK_25519_ChaChaPoly_BLAKE2s): one round
// trip in which the client, who knows the server's static key, sends an
// ephemeral key; the server answers with its own. The client thus
// authenticates the server; the server learns nothing about the client's
// identity. This file is pure: it builds and parses handshake messages and
// returns keys, but does no I/O and keeps no tables.
//
// Initiation (type 1), client -> server, exactly initiationSize bytes:
//
//	 0      1         2        3       4                  8
//	+------+---------+--------+-------+------------------+
//	| type | version | cipher | flags | sender idx (u32) |   <- also the Noise prologue
//	+------+---------+--------+-------+------------------+
//	| Noise msg 1: e (32) | AEAD(initiation payload, 24) + tag (16)   |  8..80
//	| mac1 (16)                                                        | 80..96
//	| mac2 (16), zero unless answering a cookie                        | 96..112
//
// Initiation payload: timestamp u64 (Unix ns) | FEC request (4: data,
// parity, flags, max parity) | 12 reserved zero bytes (padding: they keep
// the initiation at least as large as any answer, so the server never
// amplifies).
//
// Response (type 2), server -> client, exactly responseSize bytes:
//
//	 0      1..3   4                   8                      12
//	+------+------+-------------------+----------------------+
//	| type | rsv  | session id (u32)  | receiver idx (u32)   |
//	+------+------+-------------------+----------------------+
//	| Noise msg 2: e (32) | AEAD(response payload, 32) + tag (16)    | 12..92
//
// Response payload: status u8 | 3 reserved | session id u32 (must equal
// the header's) | FEC decision (4) | 20 reserved zero bytes.

/* Specification constants */
const (
	initiationSize        = 112
	initiationPayloadSize = 24
	initiationMAC1Offset  = 80
	initiationMAC2Offset  = 96
	responseSize          = 92
	responsePayloadSize   = 32
	noiseKeySize          = 32
	macSize               = 16

	// Response status codes.
	statusOK byte = 0

	prologueLabel = "uxp/1 Noise_NK"
	mac1Label     = "mac1----"
)

// The server must never answer with more bytes than it received.
var _ = [initiationSize - responseSize]struct{}{}

var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

var (
	errHandshakeMalformed = errors.New("uxp: malformed handshake message")
	errHandshakeMAC       = errors.New("uxp: handshake mac1 mismatch")
	errHandshakeAuth      = errors.New("uxp: handshake message failed to authenticate")
)

// sessionKeys are the two directional transport keys a handshake yields.
type sessionKeys struct {
	send, recv [ucrypto.KeySize]byte
}

func (k *sessionKeys) zero() {
	ucrypto.Zero(k.send[:])
	ucrypto.Zero(k.recv[:])
}

// mac1Key derives the key for an initiation's mac1 from the server's public
// key: BLAKE2s-256("mac1----" || server public key). Anyone who knows the
// server's public key can compute it; it lets the server reject datagrams
// from those who don't before doing any Diffie-Hellman.
func mac1Key(server PublicKey) [32]byte {
	h, _ := blake2s.New256(nil)
	h.Write([]byte(mac1Label))
	h.Write(server[:])
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// computeMAC1 returns BLAKE2s-128 keyed by key over msg[:initiationMAC1Offset].
func computeMAC1(key *[32]byte, msg []byte) [macSize]byte {
	h, _ := blake2s.New128(key[:])
	h.Write(msg[:initiationMAC1Offset])
	var m [macSize]byte
	h.Sum(m[:0])
	return m
}

func prologue(hdr []byte) []byte {
	p := make([]byte, 0, len(prologueLabel)+8)
	p = append(p, prologueLabel...)
	return append(p, hdr[:8]...)
}

// clientHandshake is the initiator's state between sending the initiation
// and receiving the response.
type clientHandshake struct {
	hs     *noise.HandshakeState
	index  uint32
	cipher Cipher
	packet [initiationSize]byte // sent as is on every retransmission
}

// newClientHandshake builds the initiation. rng supplies the ephemeral key
// (crypto/rand in production).
func newClientHandshake(server PublicKey, cipher Cipher, req fecParams, index uint32, now time.Time, rng io.Reader) (*clientHandshake, error) {
	c := &clientHandshake{index: index, cipher: cipher}
	p := c.packet[:]
	p[0] = msgInitiation
	p[1] = protocolVersion
	p[2] = byte(cipher)
	p[3] = 0
	binary.LittleEndian.PutUint32(p[4:8], index)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite,
		Random:      rng,
		Pattern:     noise.HandshakeNK,
		Initiator:   true,
		Prologue:    prologue(p),
		PeerStatic:  server[:],
	})
	if err != nil {
		return nil, err
	}
	var payload [initiationPayloadSize]byte
	binary.LittleEndian.PutUint64(payload[0:8], uint64(now.UnixNano()))
	req.put(payload[8:12])
	msg, _, _, err := hs.WriteMessage(p[8:8], payload[:])
	if err != nil {
		return nil, err
	}
	if len(msg) != initiationMAC1Offset-8 {
		return nil, errHandshakeMalformed
	}
	k := mac1Key(server)
	mac := computeMAC1(&k, p)
	copy(p[initiationMAC1Offset:], mac[:])
	c.hs = hs
	return c, nil
}

// consumeResponse authenticates the server's response and returns the
// session ID and keys. Any failure leaves the handshake usable for a later,
// genuine response.
// A genuine refusal returns ErrFECRefused.
func (c *clientHandshake) consumeResponse(pkt []byte) (uint32, sessionKeys, fecParams, error) {
	var keys sessionKeys
	if len(pkt) != responseSize || pkt[0] != msgResponse || pkt[1]|pkt[2]|pkt[3] != 0 {
		return 0, keys, fecParams{}, errHandshakeMalformed
	}
	id := binary.LittleEndian.Uint32(pkt[4:8])
	if binary.LittleEndian.Uint32(pkt[8:12]) != c.index {
		return 0, keys, fecParams{}, errHandshakeMalformed
	}
	var payload [responsePayloadSize]byte
	// flynn/noise rolls its symmetric state back when decryption fails, so
	// a forged response does not poison the handshake.
	out, send, recv, err := c.hs.ReadMessage(payload[:0], pkt[12:responseSize])
	if err != nil || send == nil || recv == nil || len(out) != responsePayloadSize {
		return 0, keys, fecParams{}, errHandshakeAuth
	}
	if out[0] == statusFECRefused {
		return 0, keys, fecParams{}, ErrFECRefused
	}
	fp, ok := parseFECParams(out[8:12])
	if out[0] != statusOK || binary.LittleEndian.Uint32(out[4:8]) != id || id == 0 || !ok {
		return 0, keys, fecParams{}, errHandshakeAuth
	}
	keys.send = send.UnsafeKey()
	keys.recv = recv.UnsafeKey()
	return id, keys, fp, nil
}

// initiation is what the server learns from a valid initiation.
type initiation struct {
	senderIndex uint32
	cipher      Cipher
	ephemeral   [noiseKeySize]byte
	timestamp   time.Time
	fec         fecParams // the decision
	refused     bool      // the response refuses the session
}

// checkInitiation does the cheap checks on an initiation: exact length,
// type, version, a known cipher, and mac1. It does no Diffie-Hellman.
func checkInitiation(pkt []byte, key *[32]byte) error {
	if len(pkt) != initiationSize || pkt[0] != msgInitiation || pkt[1] != protocolVersion || pkt[3] != 0 {
		return errHandshakeMalformed
	}
	if !Cipher(pkt[2]).Valid() {
		return errHandshakeMalformed
	}
	// mac2 is reserved for cookie replies and must be zero until then.
	if !isZero(pkt[initiationMAC2Offset:initiationSize]) {
		return errHandshakeMalformed
	}
	mac := computeMAC1(key, pkt)
	if subtle.ConstantTimeCompare(mac[:], pkt[initiationMAC1Offset:initiationMAC2Offset]) != 1 {
		return errHandshakeMAC
	}
	return nil
}

// respond processes an initiation that passed checkInitiation and builds
// the response for sessionID. It costs two X25519 operations and one key
// generation. On error
// nothing was created and nothing must be sent.
// policy is the server's FEC policy: a request it does not allow gets an
// authenticated refusal (in.refused) instead of a session.
func respond(static *noise.DHKey, pkt []byte, sessionID uint32, policy fecParams, rng io.Reader) (initiation, [responseSize]byte, sessionKeys, error) {
	var (
		in   initiation
		resp [responseSize]byte
		keys sessionKeys
	)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   noiseSuite,
		Random:        rng,
		Pattern:       noise.HandshakeNK,
		Initiator:     false,
		Prologue:      prologue(pkt),
		StaticKeypair: *static,
	})
	if err != nil {
		return in, resp, keys, err
	}
	var payload [initiationPayloadSize]byte
	out, _, _, err := hs.ReadMessage(payload[:0], pkt[8:initiationMAC1Offset])
	if err != nil || len(out) != initiationPayloadSize {
		return in, resp, keys, errHandshakeAuth
	}
	in.senderIndex = binary.LittleEndian.Uint32(pkt[4:8])
	in.cipher = Cipher(pkt[2])
	copy(in.ephemeral[:], pkt[8:8+noiseKeySize])
	in.timestamp = time.Unix(0, int64(binary.LittleEndian.Uint64(out[0:8])))
	req, ok := parseFECParams(out[8:12])
	if !ok {
		return in, resp, keys, errHandshakeMalformed
	}
	in.fec, ok = negotiateFEC(policy, req)
	in.refused = !ok

	resp[0] = msgResponse
	binary.LittleEndian.PutUint32(resp[4:8], sessionID)
	binary.LittleEndian.PutUint32(resp[8:12], in.senderIndex)
	var rp [responsePayloadSize]byte
	rp[0] = statusOK
	if in.refused {
		rp[0] = statusFECRefused
	}
	binary.LittleEndian.PutUint32(rp[4:8], sessionID)
	in.fec.put(rp[8:12])
	msg, recv, send, err := hs.WriteMessage(resp[12:12], rp[:])
	if err != nil || recv == nil || send == nil || len(msg) != responseSize-12 {
		return in, resp, keys, errHandshakeAuth
	}
	// Split gives (initiator->responder, responder->initiator).
	keys.recv = recv.UnsafeKey()
	keys.send = send.UnsafeKey()
	return in, resp, keys, nil
}
