package uxp

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/blake2s"

	ucrypto "github.com/uxp-go/uxp/crypto"
)

// The handshake is one Noise round trip. An anonymous client uses Noise NK:
// it knows the server's static key and sends an ephemeral key; the server
// learns nothing about who it is. A client with a static key of its own uses
// Noise IK, which also sends that key (encrypted) so the server can
// authenticate it. Either may add psk2, a pre-shared key mixed into the
// response. This file is pure: it builds and parses handshake messages and
// returns keys, but does no I/O and keeps no tables.
//
// Initiation (type 1), client -> server, exactly initiationSize bytes (NK)
// or initiationIKSize bytes (IK):
//
//	 0      1         2        3       4                  8
//	+------+---------+--------+-------+------------------+
//	| type | version | cipher | flags | sender idx (u32) |   <- also the Noise prologue
//	+------+---------+--------+-------+------------------+
//	| NK: e (32) | AEAD(payload, 24) + tag (16)                 |  8..80
//	| IK: e (32) | AEAD(s, 32) + tag (16) | AEAD(payload) + tag |  8..128
//	| mac1 (16)                                                 |  len-32..len-16
//	| mac2 (16), zero unless answering a cookie reply           |  len-16..len
//
// flags: bit 0 = IK (the client sends a static key), bit 1 = psk2, bit 2 =
// extended (the payload carries connect data; see below).
//
// Initiation payload: timestamp u64 (Unix ns) | FEC request (4: data,
// parity, flags, max parity) | max packet size u16 | lane count u8 | min
// packet size u16 (the smallest at which the client's MaxMessageSize fits)
// | 7 reserved zero bytes. A zero means "absent" (a client from before
// negotiation); the server then assumes its own value. The
// payload keeps the initiation at least as large as any answer, so the
// server never amplifies.
//
// Extended initiation (flag bit 2): the payload goes on after those 24
// bytes with connect data length u16 | connect data | zero padding, so
// that the whole initiation is between minExtInitiation and
// maxInitiationSize bytes. Only a client with connect data sends it.
//
// Response (type 2), server -> client, exactly responseSize bytes:
//
//	 0      1..3   4                   8                      12
//	+------+------+-------------------+----------------------+
//	| type | rsv  | session id (u32)  | receiver idx (u32)   |
//	+------+------+-------------------+----------------------+
//	| Noise msg 2: e (32) | AEAD(response payload, 32) + tag (16)    | 12..92
//
// Response payload: status u8 | server max packet size u16 | server lane
// count u8 | session id u32 (must equal the header's) | FEC decision (4) |
// stateless reset token (16) | 4 reserved zero bytes. A rejection by the
// application (statusRejected) puts code u16 | reason length u8 | reason
// (up to 25 bytes) at offset 4 instead. The answer to an extended
// initiation is extended too: its payload goes on with data length u16 |
// data, the accept data of an accepted session or the whole reason of a
// rejection.

/* Specification constants */
const (
	initiationSize        = 112 // NK
	initiationIKSize      = 160 // IK: plus the encrypted static key (48)
	initiationPayloadSize = 24
	responseSize          = 92
	responsePayloadSize   = 32
	noiseKeySize          = 32
	macSize               = 16
	resetTokenSize        = 16

	// Initiation flags (byte 3).
	flagIdentity byte = 1 << 0 // Noise IK: the client sends its static key
	flagPSK      byte = 1 << 1 // psk2: a pre-shared key is mixed into the response
	knownFlags        = flagIdentity | flagPSK

	flagExtended  byte = 1 << 2 // the payload carries connect data
	knownFlagsExt      = knownFlags | flagExtended

	// Extended handshake messages (connect data, accept data, reasons).
	minExtInitiation  = 400  // keeps every extended response smaller
	maxInitiationSize = 1200 // the safe path MTU: never fragmented
	responseExtMax    = 2 + max(MaxRejectReasonSize, MaxAcceptDataSize)
	plainReasonMax    = responsePayloadSize - 7

	// Response status codes. statusFECRefused (1) is in fec_session.go.
	statusOK           byte = 0
	statusServerFull   byte = 2
	statusClientDenied byte = 3
	statusShuttingDown byte = 4
	statusIncompatible byte = 5 // lanes or packet size cannot be reconciled
	statusRejected     byte = 6 // the application's decision (ConnectHandler)

	prologueLabel = "uxp/1 Noise_NK"
	mac1Label     = "mac1----"
)

// The server must never answer with more bytes than it received.
var (
	_ = [initiationSize - responseSize]struct{}{}
	_ = [minExtInitiation - responseSize - responseExtMax]struct{}{}
	_ = [maxInitiationSize - initiationIKSize - 2 - MaxConnectDataSize]struct{}{}
)

// Specification limits of the application data in the handshake.
const (
	// MaxConnectDataSize is the most Config.ConnectData may hold: what
	// fits, with the handshake, in one 1200-byte datagram.
	MaxConnectDataSize = 1000
	// MaxRejectReasonSize is the longest reason a rejection carries; a
	// longer one is cut to this many bytes.
	MaxRejectReasonSize = 256
	// MaxAcceptDataSize is the most accept data a server may send back
	// with an accepted session (ConnectRequest.Accept).
	MaxAcceptDataSize = 256
)

var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// x25519Suite is noiseSuite with a Diffie-Hellman that costs one X25519
// ladder per operation. noise.DH25519 goes through curve25519.X25519, which
// builds a crypto/ecdh private key, and so derives its public key (a second
// ladder), on every call: six ladders for the server's three operations
// instead of three. This one keeps the crypto/ecdh keys it has: a static
// key prepared once (staticKey) and the ephemeral key it generated. The
// results, the checks (a low-order peer key fails) and the protocol name
// are those of noise.DH25519. One suite serves one handshake.
type x25519Suite struct {
	noise.CipherSuite
	static *ecdh.PrivateKey // nil: none prepared
	eph    *ecdh.PrivateKey // the key GenerateKeypair made, nil before
	ops    *atomic.Uint64   // counts X25519 ladders; nil: not counted
}

func newX25519Suite(static *ecdh.PrivateKey, ops *atomic.Uint64) *x25519Suite {
	return &x25519Suite{CipherSuite: noiseSuite, static: static, ops: ops}
}

// count records one X25519 ladder: the unit of handshake work that the
// DoS tests bound (a BLAKE2s or an AEAD is two orders of magnitude
// cheaper).
func countX25519(ops *atomic.Uint64) {
	if ops != nil {
		ops.Add(1)
	}
}

// GenerateKeypair reads the private key from rng, as noise.DH25519 does.
func (s *x25519Suite) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	if rng == nil {
		rng = rand.Reader
	}
	priv := make([]byte, KeySize)
	if _, err := io.ReadFull(rng, priv); err != nil {
		return noise.DHKey{}, err
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return noise.DHKey{}, err
	}
	countX25519(s.ops) // the public key
	s.eph = k
	return noise.DHKey{Private: priv, Public: k.PublicKey().Bytes()}, nil
}

// DH returns X25519(priv, pub), an error for a low-order pub.
func (s *x25519Suite) DH(priv, pub []byte) ([]byte, error) {
	curve := ecdh.X25519()
	k := s.held(priv)
	if k == nil {
		var err error
		if k, err = curve.NewPrivateKey(priv); err != nil {
			return nil, err
		}
	}
	p, err := curve.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	countX25519(s.ops)
	return k.ECDH(p)
}

// held returns the prepared key whose private half is priv, or nil.
func (s *x25519Suite) held(priv []byte) *ecdh.PrivateKey {
	if s.eph != nil && subtle.ConstantTimeCompare(s.eph.Bytes(), priv) == 1 {
		return s.eph
	}
	if s.static != nil && subtle.ConstantTimeCompare(s.static.Bytes(), priv) == 1 {
		return s.static
	}
	return nil
}

// staticKey is the server's static key pair, in the form flynn/noise takes
// and as a crypto/ecdh key prepared once for every handshake's es.
type staticKey struct {
	dh  noise.DHKey
	key *ecdh.PrivateKey
	ops *atomic.Uint64 // where the handshakes count their X25519; nil: nowhere
}

func newStaticKey(priv PrivateKey) (*staticKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, err
	}
	return &staticKey{
		dh:  noise.DHKey{Private: append([]byte(nil), priv[:]...), Public: k.PublicKey().Bytes()},
		key: k,
	}, nil
}

var (
	errHandshakeMalformed = errors.New("uxp: malformed handshake message")
	errHandshakeMAC       = errors.New("uxp: handshake mac1 mismatch")
	errHandshakeAuth      = errors.New("uxp: handshake message failed to authenticate")
	errHandshakePSK       = errors.New("uxp: initiation's psk flag does not match the server's configuration")
)

// sessionKeys are the two directional transport keys a handshake yields.
type sessionKeys struct {
	send, recv [ucrypto.KeySize]byte
}

func (k *sessionKeys) zero() {
	ucrypto.Zero(k.send[:])
	ucrypto.Zero(k.recv[:])
}

// initiationLen is the exact length of an initiation with these flags,
// the extended flag aside: the length of its fixed part.
func initiationLen(flags byte) int {
	if flags&flagIdentity != 0 {
		return initiationIKSize
	}
	return initiationSize
}

// mac1Offset and mac2Offset locate the MACs: the last 32 bytes.
func mac1Offset(pkt []byte) int { return len(pkt) - 2*macSize }
func mac2Offset(pkt []byte) int { return len(pkt) - macSize }

// labelKey returns BLAKE2s-256(label || server public key). It keys mac1
// ("mac1----") and the cookie reply's encryption ("cookie--").
func labelKey(label string, server PublicKey) [32]byte {
	h, _ := blake2s.New256(nil)
	h.Write([]byte(label))
	h.Write(server[:])
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// mac1Key derives the key for an initiation's mac1 from the server's public
// key and, when one is configured, the pre-shared key:
//
//	no psk:   BLAKE2s-256("mac1----" || server public key)
//	with psk: BLAKE2s-256("mac1----" || server public key || psk)
//
// Anyone who knows the server's public key (and its psk, if it has one)
// can compute it; it lets the server reject datagrams from those who don't
// before doing any Diffie-Hellman and without keeping state. With a psk, an
// initiation from a client without it (or with another one) fails mac1
// exactly as one for another server does: it costs one BLAKE2s, and the
// server's silence does not tell whether it has a psk.
func mac1Key(server PublicKey, psk []byte) [32]byte {
	if psk == nil {
		return labelKey(mac1Label, server)
	}
	h, _ := blake2s.New256(nil)
	h.Write([]byte(mac1Label))
	h.Write(server[:])
	h.Write(psk)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// keyedMAC returns BLAKE2s-128 keyed by key over msg.
func keyedMAC(key []byte, msg []byte) [macSize]byte {
	h, _ := blake2s.New128(key)
	h.Write(msg)
	var m [macSize]byte
	h.Sum(m[:0])
	return m
}

// computeMAC1 returns mac1 for an initiation: keyed by key, over everything
// before the mac1 field.
func computeMAC1(key *[32]byte, msg []byte) [macSize]byte {
	return keyedMAC(key[:], msg[:mac1Offset(msg)])
}

func prologue(hdr []byte) []byte {
	p := make([]byte, 0, len(prologueLabel)+8)
	p = append(p, prologueLabel...)
	return append(p, hdr[:8]...)
}

// clientIdentity is what a client may prove about itself: a static key
// (IK) and a pre-shared key (psk2). The zero value is an anonymous NK
// client without a psk.
type clientIdentity struct {
	static *noise.DHKey // nil: anonymous (NK)
	psk    []byte       // nil or 32 bytes
}

func (id clientIdentity) flags() byte {
	var f byte
	if id.static != nil {
		f |= flagIdentity
	}
	if id.psk != nil {
		f |= flagPSK
	}
	return f
}

func noiseConfig(flags byte, initiator bool, prologueBytes []byte, rng io.Reader, suite *x25519Suite) noise.Config {
	cfg := noise.Config{
		CipherSuite: suite,
		Random:      rng,
		Pattern:     noise.HandshakeNK,
		Initiator:   initiator,
		Prologue:    prologueBytes,
	}
	if flags&flagIdentity != 0 {
		cfg.Pattern = noise.HandshakeIK
	}
	if flags&flagPSK != 0 {
		cfg.PresharedKeyPlacement = 2
	}
	return cfg
}

// clientHandshake is the initiator's state between sending the initiation
// and receiving the response.
type clientHandshake struct {
	hs     *noise.HandshakeState
	index  uint32
	cipher Cipher
	ext    bool   // the extended form: the response is extended too
	packet []byte // sent as is; only mac2 changes between copies
}

// initiation returns the packet as built, mac2 zero.
func (c *clientHandshake) initiation() []byte { return c.packet }

// helloParams is what an initiation tells the server about the client
// beyond its keys: the negotiated parameters (zero: absent) and the
// connect data. connectData non-nil selects the extended form.
type helloParams struct {
	mtu, lanes, minMTU int
	connectData        []byte
}

func (p helloParams) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:2], uint16(p.mtu))
	b[2] = byte(p.lanes)
	binary.LittleEndian.PutUint16(b[3:5], uint16(p.minMTU))
}

// newClientHandshake builds the initiation. rng supplies the ephemeral key
// (crypto/rand in production).
func newClientHandshake(server PublicKey, cipher Cipher, req fecParams, index uint32, now time.Time, rng io.Reader, id clientIdentity, hello helloParams) (*clientHandshake, error) {
	flags := id.flags()
	size := initiationLen(flags)
	if hello.connectData != nil {
		if len(hello.connectData) > MaxConnectDataSize {
			return nil, &ConfigError{Field: "ConnectData", Reason: "longer than MaxConnectDataSize"}
		}
		flags |= flagExtended
		size = max(minExtInitiation, size+2+len(hello.connectData))
	}
	c := &clientHandshake{index: index, cipher: cipher, ext: flags&flagExtended != 0, packet: make([]byte, size)}
	p := c.packet
	p[0] = msgInitiation
	p[1] = protocolVersion
	p[2] = byte(cipher)
	p[3] = flags
	binary.LittleEndian.PutUint32(p[4:8], index)
	cfg := noiseConfig(flags, true, prologue(p), rng, newX25519Suite(nil, nil))
	cfg.PeerStatic = server[:]
	if id.static != nil {
		cfg.StaticKeypair = *id.static
	}
	cfg.PresharedKey = id.psk
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, initiationPayloadSize+size-initiationLen(flags))
	binary.LittleEndian.PutUint64(payload[0:8], uint64(now.UnixNano()))
	req.put(payload[8:12])
	hello.put(payload[12:17])
	if c.ext {
		binary.LittleEndian.PutUint16(payload[24:26], uint16(len(hello.connectData)))
		copy(payload[26:], hello.connectData)
	}
	msg, _, _, err := hs.WriteMessage(p[8:8], payload)
	if err != nil {
		return nil, err
	}
	if len(msg) != mac1Offset(p)-8 {
		return nil, errHandshakeMalformed
	}
	k := mac1Key(server, id.psk)
	mac := computeMAC1(&k, p)
	copy(p[mac1Offset(p):], mac[:])
	c.hs = hs
	return c, nil
}

// responseResult is what a client learns from a genuine response.
type responseResult struct {
	id         uint32
	keys       sessionKeys
	fec        fecParams
	token      [resetTokenSize]byte
	peerMTU    int    // the server's max packet size; 0: absent (an older server)
	peerLanes  int    // the server's lane count; 0: absent
	acceptData []byte // extended responses only
}

// incompatibleStatus is the client's view of a statusIncompatible
// refusal: the server's own parameters, which the client compares with
// its own to name what differs (negotiate.go).
type incompatibleStatus struct{ mtu, lanes int }

func (e *incompatibleStatus) Error() string { return "uxp: server refused: incompatible configuration" }

// consumeResponse authenticates the server's response and returns the
// session ID, keys, FEC decision and stateless reset token. Any failure
// leaves the handshake usable for a later, genuine response. A genuine
// refusal returns ErrFECRefused, ErrServerFull or ErrClientRejected.
func (c *clientHandshake) consumeResponse(pkt []byte) (responseResult, error) {
	var r responseResult
	size := len(pkt) == responseSize
	if c.ext {
		size = len(pkt) >= responseSize+2 && len(pkt) <= responseSize+responseExtMax
	}
	if !size || pkt[0] != msgResponse || pkt[1]|pkt[2]|pkt[3] != 0 {
		return r, errHandshakeMalformed
	}
	id := binary.LittleEndian.Uint32(pkt[4:8])
	if binary.LittleEndian.Uint32(pkt[8:12]) != c.index {
		return r, errHandshakeMalformed
	}
	var payload [responsePayloadSize + responseExtMax]byte
	// flynn/noise rolls its symmetric state back when decryption fails, so
	// a forged response does not poison the handshake.
	out, send, recv, err := c.hs.ReadMessage(payload[:0], pkt[12:])
	if err != nil || send == nil || recv == nil || len(out) != len(pkt)-responseSize+responsePayloadSize {
		return r, errHandshakeAuth
	}
	var ext []byte
	if c.ext {
		ext = out[responsePayloadSize+2:]
		if int(binary.LittleEndian.Uint16(out[responsePayloadSize:])) != len(ext) {
			return r, errHandshakeMalformed
		}
	}
	r.peerMTU = int(binary.LittleEndian.Uint16(out[1:3]))
	r.peerLanes = int(out[3])
	switch out[0] {
	case statusIncompatible:
		return r, &incompatibleStatus{mtu: r.peerMTU, lanes: r.peerLanes}
	case statusRejected:
		e := &RejectError{Code: binary.LittleEndian.Uint16(out[4:6])}
		if n := int(out[6]); n <= plainReasonMax && len(ext) == 0 {
			e.Reason = string(out[7 : 7+n])
		} else {
			e.Reason = string(ext[:min(len(ext), MaxRejectReasonSize)])
		}
		return r, e
	}
	if err := statusErr(out[0]); err != nil {
		return r, err
	}
	if len(ext) > MaxAcceptDataSize {
		return r, errHandshakeMalformed
	}
	r.acceptData = append([]byte(nil), ext...)
	fp, ok := parseFECParams(out[8:12])
	if out[0] != statusOK || binary.LittleEndian.Uint32(out[4:8]) != id || id == 0 || !ok {
		return r, errHandshakeAuth
	}
	r.id = id
	r.fec = fp
	copy(r.token[:], out[12:12+resetTokenSize])
	r.keys.send = send.UnsafeKey()
	r.keys.recv = recv.UnsafeKey()
	return r, nil
}

// initiation is what the server learns from a valid initiation.
type initiation struct {
	senderIndex uint32
	cipher      Cipher
	flags       byte
	ephemeral   [noiseKeySize]byte
	peerKey     PublicKey // IK only
	hasPeerKey  bool
	timestamp   uint64 // Unix ns, as the client sent it
	fecReq      fecParams
	peerMTU     int    // the client's max packet size; 0: absent
	peerLanes   int    // the client's lane count; 0: absent
	peerMinMTU  int    // the smallest packet size the client can use; 0: absent
	connectData []byte // extended initiations only; a copy
	ext         bool   // extended: the response must be too
	size        int    // the initiation's length, which bounds the answer
}

// checkInitiation does the cheap checks on an initiation: exact length for
// its flags, type, version, a known cipher, known flags, and mac1. It does
// no Diffie-Hellman. mac2 is not looked at here: only a server under load
// checks it (cookie.go).
func checkInitiation(pkt []byte, key *[32]byte) error {
	if len(pkt) < 8 || pkt[0] != msgInitiation || pkt[1] != protocolVersion || pkt[3]&^knownFlagsExt != 0 {
		return errHandshakeMalformed
	}
	size := len(pkt) == initiationLen(pkt[3])
	if pkt[3]&flagExtended != 0 {
		size = len(pkt) >= max(minExtInitiation, initiationLen(pkt[3])+2) && len(pkt) <= maxInitiationSize
	}
	if !size || !Cipher(pkt[2]).Valid() {
		return errHandshakeMalformed
	}
	mac := computeMAC1(key, pkt)
	if subtle.ConstantTimeCompare(mac[:], pkt[mac1Offset(pkt):mac2Offset(pkt)]) != 1 {
		return errHandshakeMAC
	}
	return nil
}

// serverHandshake is the responder's state between reading an initiation
// and writing the response. It lives only inside one call of the
// handshake loop.
type serverHandshake struct {
	hs *noise.HandshakeState
	in initiation
}

// readInitiation processes an initiation that passed checkInitiation. For
// NK it costs one X25519 (es), for IK two (es, ss). psk is the server's
// pre-shared key (nil for none); an initiation whose psk flag does not
// match is rejected before any Diffie-Hellman. On error nothing was created
// and nothing must be sent.
func readInitiation(static *staticKey, psk []byte, pkt []byte, rng io.Reader) (*serverHandshake, error) {
	flags := pkt[3]
	if (flags&flagPSK != 0) != (psk != nil) {
		return nil, errHandshakePSK
	}
	cfg := noiseConfig(flags, false, prologue(pkt), rng, newX25519Suite(static.key, static.ops))
	cfg.StaticKeypair = static.dh
	cfg.PresharedKey = psk
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, err
	}
	var payload [maxInitiationSize]byte
	want := initiationPayloadSize + len(pkt) - initiationLen(flags)
	out, _, _, err := hs.ReadMessage(payload[:0], pkt[8:mac1Offset(pkt)])
	if err != nil || len(out) != want {
		return nil, errHandshakeAuth
	}
	h := &serverHandshake{hs: hs}
	in := &h.in
	in.size = len(pkt)
	in.peerMTU = int(binary.LittleEndian.Uint16(out[12:14]))
	in.peerLanes = int(out[14])
	in.peerMinMTU = int(binary.LittleEndian.Uint16(out[15:17]))
	if flags&flagExtended != 0 {
		n := int(binary.LittleEndian.Uint16(out[24:26]))
		if n > MaxConnectDataSize || 26+n > len(out) {
			return nil, errHandshakeMalformed
		}
		in.ext = true
		in.connectData = append([]byte{}, out[26:26+n]...)
	}
	in.senderIndex = binary.LittleEndian.Uint32(pkt[4:8])
	in.cipher = Cipher(pkt[2])
	in.flags = flags
	copy(in.ephemeral[:], pkt[8:8+noiseKeySize])
	if flags&flagIdentity != 0 {
		ps := hs.PeerStatic()
		if len(ps) != KeySize {
			return nil, errHandshakeAuth
		}
		copy(in.peerKey[:], ps)
		in.hasPeerKey = true
	}
	in.timestamp = binary.LittleEndian.Uint64(out[0:8])
	req, ok := parseFECParams(out[8:12])
	if !ok {
		return nil, errHandshakeMalformed
	}
	in.fecReq = req
	return h, nil
}

// writeResponse builds the response for sessionID with status and, for
// statusOK, the FEC decision and the reset token. It costs one key
// generation and two X25519 (ee, se). A refusal (status != statusOK)
// returns zero keys.
func (h *serverHandshake) writeResponse(sessionID uint32, status byte, decision fecParams, token *[resetTokenSize]byte) ([responseSize]byte, sessionKeys, error) {
	var resp [responseSize]byte
	b, keys, err := h.writeAnswer(sessionID, status, decision, token, answerInfo{})
	copy(resp[:], b)
	return resp, keys, err
}

// answerInfo is what a response carries besides the session: the
// server's own parameters and the application's code and data (the
// reason of a rejection, the accept data of an acceptance).
type answerInfo struct {
	mtu, lanes int
	code       uint16
	data       []byte
}

// writeAnswer builds the response to h's initiation: extended if the
// initiation was. In the plain form, a rejection's reason is cut to
// plainReasonMax bytes and accept data is left out: they need the room
// an extended initiation provides (the server never amplifies).
func (h *serverHandshake) writeAnswer(sessionID uint32, status byte, decision fecParams, token *[resetTokenSize]byte, info answerInfo) ([]byte, sessionKeys, error) {
	var keys sessionKeys
	data := info.data
	if status == statusRejected {
		data = data[:min(len(data), MaxRejectReasonSize)]
	} else if status != statusOK {
		data = nil
	}
	size := responseSize
	if h.in.ext {
		size += 2 + len(data)
	}
	resp := make([]byte, size)
	resp[0] = msgResponse
	binary.LittleEndian.PutUint32(resp[4:8], sessionID)
	binary.LittleEndian.PutUint32(resp[8:12], h.in.senderIndex)
	rp := make([]byte, size-responseSize+responsePayloadSize)
	rp[0] = status
	binary.LittleEndian.PutUint16(rp[1:3], uint16(info.mtu))
	rp[3] = byte(info.lanes)
	switch status {
	case statusOK:
		binary.LittleEndian.PutUint32(rp[4:8], sessionID)
		decision.put(rp[8:12])
		copy(rp[12:12+resetTokenSize], token[:])
	case statusRejected:
		binary.LittleEndian.PutUint16(rp[4:6], info.code)
		if !h.in.ext {
			n := copy(rp[7:], data[:min(len(data), plainReasonMax)])
			rp[6] = byte(n)
		}
	}
	if h.in.ext {
		binary.LittleEndian.PutUint16(rp[responsePayloadSize:], uint16(len(data)))
		copy(rp[responsePayloadSize+2:], data)
	}
	msg, recv, send, err := h.hs.WriteMessage(resp[12:12], rp)
	if err != nil || recv == nil || send == nil || len(msg) != size-12 || size >= h.in.size {
		return resp, keys, errHandshakeAuth
	}
	if status != statusOK {
		return resp, keys, nil
	}
	// Split gives (initiator->responder, responder->initiator).
	keys.recv = recv.UnsafeKey()
	keys.send = send.UnsafeKey()
	return resp, keys, nil
}

// respond is readInitiation and writeResponse with only the FEC policy
// applied: the whole server side for tests and fuzzing.
func respond(static *staticKey, pkt []byte, sessionID uint32, policy fecParams, rng io.Reader) (initiation, [responseSize]byte, sessionKeys, error) {
	h, err := readInitiation(static, nil, pkt, rng)
	if err != nil {
		return initiation{}, [responseSize]byte{}, sessionKeys{}, err
	}
	status := statusOK
	decision, ok := negotiateFEC(policy, h.in.fecReq)
	if !ok {
		status = statusFECRefused
	}
	var token [resetTokenSize]byte
	resp, keys, err := h.writeResponse(sessionID, status, decision, &token)
	return h.in, resp, keys, err
}

// statusErr maps a refusal status to the error the client's Start returns;
// nil for statusOK and for codes it does not know (which then fail the
// response's other checks).
func statusErr(status byte) error {
	switch status {
	case statusFECRefused:
		return ErrFECRefused
	case statusServerFull:
		return ErrServerFull
	case statusClientDenied:
		return ErrClientRejected
	case statusShuttingDown:
		return ErrServerShuttingDown
	}
	return nil
}
