package uxp

import (
	"io"
	"time"

	"github.com/flynn/noise"

	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/wire"
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
// | suites u8 | suite flags u8 | 5 reserved zero bytes. A zero means
// "absent" (a client from before negotiation); the server then assumes its
// own value, and the header's cipher (negotiate.go, chooseSuite). The
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
// stateless reset token (16) | suite u8 | suite flags u8 | 2 reserved
// zero bytes. A rejection by the
// application (statusRejected) puts code u16 | reason length u8 | reason
// (up to 25 bytes) at offset 4 instead. The answer to an extended
// initiation is extended too: its payload goes on with data length u16 |
// data, the accept data of an accepted session or the whole reason of a
// rejection.

/* Specification constants */
const (
	initiationSize      = handshake.InitiationSize
	initiationIKSize    = handshake.InitiationIKSize
	responseSize        = handshake.ResponseSize
	responsePayloadSize = wire.ResponsePayloadSize
	noiseKeySize        = 32
	macSize             = handshake.MACSize
	resetTokenSize      = wire.ResetTokenSize

	// Initiation flags (byte 3).
	flagIdentity = wire.FlagIK
	flagPSK      = wire.FlagPSK
	flagExtended = wire.FlagExtended

	// Extended handshake messages (connect data, accept data, reasons).
	minExtInitiation  = handshake.MinExtInitiation  // keeps every extended response smaller
	maxInitiationSize = handshake.MaxInitiationSize // the safe path MTU: never fragmented
	responseExtMax    = 2 + max(MaxRejectReasonSize, MaxAcceptDataSize)
	plainReasonMax    = wire.PlainReasonMax

	// Response status codes. statusFECRefused (1) is in fec_session.go.
	statusOK           byte = 0
	statusServerFull   byte = 2
	statusClientDenied byte = 3
	statusShuttingDown byte = 4
	statusIncompatible byte = 5 // lanes or packet size cannot be reconciled
	statusRejected     byte = 6 // the application's decision (ConnectHandler)

)

// The server must never answer with more bytes than it received.
var (
	_ = [initiationSize - responseSize]struct{}{}
	_ = [initiationSize - handshake.CookieReplySize]struct{}{} // a cookie reply, too
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

var (
	errHandshakeMalformed = handshake.ErrMalformed
	errHandshakeMAC       = handshake.ErrMAC
	errHandshakeAuth      = handshake.ErrAuth
)

// sessionKeys are the two directional transport keys a handshake yields.
type sessionKeys struct {
	send, recv [ucrypto.KeySize]byte
}

func (k *sessionKeys) zero() {
	ucrypto.Zero(k.send[:])
	ucrypto.Zero(k.recv[:])
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

// clientHandshake is the initiator's state between sending the initiation
// and receiving the response (handshake.Client, with the cipher asked for).
type clientHandshake struct {
	hs     *handshake.Client
	cipher Cipher
	packet []byte // sent as is; only mac2 changes between copies
}

// initiation returns the packet as built, mac2 zero.
func (c *clientHandshake) initiation() []byte { return c.packet }

// helloParams is what an initiation tells the server about the client
// beyond its keys: the negotiated parameters (zero: absent) and the
// connect data. connectData non-nil selects the extended form.
type helloParams struct {
	mtu, lanes, minMTU int
	suites, suiteFlags byte // the suites offered (wire.SuiteBit) and wire.SuiteAESHardware
	connectData        []byte
}

// newClientHandshake builds the initiation. rng supplies the ephemeral key
// (crypto/rand in production).
func newClientHandshake(server PublicKey, cipher Cipher, req fecParams, index uint32, now time.Time, rng io.Reader, id clientIdentity, hello helloParams) (*clientHandshake, error) {
	if len(hello.connectData) > MaxConnectDataSize {
		return nil, &ConfigError{Field: "ConnectData", Reason: "longer than MaxConnectDataSize"}
	}
	hs, err := handshake.NewClient(handshake.ClientConfig{
		Server: server,
		Static: id.static,
		PSK:    id.psk,
		Cipher: byte(cipher),
		Index:  index,
		Hello: wire.Hello{
			Timestamp:  uint64(now.UnixNano()),
			FEC:        req.wire(),
			MTU:        uint16(hello.mtu),
			Lanes:      uint8(hello.lanes),
			MinMTU:     uint16(hello.minMTU),
			Suites:     hello.suites,
			SuiteFlags: hello.suiteFlags,
		},
		ConnectData: hello.connectData,
	}, rng)
	if err != nil {
		return nil, err
	}
	return &clientHandshake{hs: hs, cipher: cipher, packet: hs.Initiation()}, nil
}

// responseResult is what a client learns from a genuine response.
type responseResult struct {
	id         uint32
	keys       sessionKeys
	fec        fecParams
	token      [resetTokenSize]byte
	peerMTU    int    // the server's max packet size; 0: absent (an older server)
	peerLanes  int    // the server's lane count; 0: absent
	suite      byte   // the server's cipher suite; 0: absent (an older server)
	acceptData []byte // extended responses only
}

// incompatibleStatus is the client's view of a statusIncompatible
// refusal: the server's own parameters, which the client compares with
// its own to name what differs (negotiate.go).
type incompatibleStatus struct {
	mtu, lanes int
	suite      byte // the cipher the server requires; 0: none
}

func (e *incompatibleStatus) Error() string { return "uxp: server refused: incompatible configuration" }

// consumeResponse authenticates the server's response and returns the
// session ID, keys, FEC decision and stateless reset token. Any failure
// leaves the handshake usable for a later, genuine response. A genuine
// refusal returns ErrFECRefused, ErrServerFull or ErrClientRejected.
func (c *clientHandshake) consumeResponse(pkt []byte) (responseResult, error) {
	var r responseResult
	res, err := c.hs.ReadResponse(pkt, responseExtMax)
	if err != nil {
		return r, err
	}
	id, rp, ext := res.SessionID, res.Payload, res.Ext
	r.peerMTU = int(rp.MTU())
	r.peerLanes = int(rp.Lanes())
	switch rp.Status() {
	case statusIncompatible:
		return r, &incompatibleStatus{mtu: r.peerMTU, lanes: r.peerLanes, suite: rp.Suite()}
	case statusRejected:
		e := &RejectError{Code: rp.RejectCode()}
		if reason, ok := rp.PlainReason(); ok && len(ext) == 0 {
			e.Reason = reason
		} else {
			e.Reason = string(ext[:min(len(ext), MaxRejectReasonSize)])
		}
		return r, e
	}
	if err := statusErr(rp.Status()); err != nil {
		return r, err
	}
	if len(ext) > MaxAcceptDataSize {
		return r, errHandshakeMalformed
	}
	r.acceptData = append([]byte(nil), ext...)
	fp, ok := parseFECParams(rp.FEC())
	if rp.Status() != statusOK || rp.SessionID() != id || id == 0 || !ok {
		return r, errHandshakeAuth
	}
	r.id = id
	r.suite = rp.Suite()
	r.fec = fp
	r.token = rp.Token()
	r.keys = sessionKeys{send: res.Keys.Send, recv: res.Keys.Recv}
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
	suites      byte   // the suites the client accepts (wire.SuiteBit); 0: absent
	suiteFlags  byte   // wire.SuiteAESHardware
	connectData []byte // extended initiations only; a copy
	ext         bool   // extended: the response must be too
	size        int    // the initiation's length, which bounds the answer
}

// checkInitiation does the cheap checks on an initiation
// (handshake.CheckInitiation) with this module's ciphers.
func checkInitiation(pkt []byte, key *[32]byte) error {
	return handshake.CheckInitiation(pkt, key, func(c byte) bool { return Cipher(c).Valid() })
}

// serverHandshake is the responder's state between reading an initiation
// and writing the response. It lives only inside one call of the
// handshake loop.
type serverHandshake struct {
	hs handshake.Server
	in initiation
}

// readInitiation processes an initiation that passed checkInitiation. For
// NK it costs one X25519 (es), for IK two (es, ss). psk is the server's
// pre-shared key (nil for none); an initiation whose psk flag does not
// match is rejected before any Diffie-Hellman. On error nothing was created
// and nothing must be sent.
func readInitiation(static *handshake.StaticKey, psk []byte, pkt []byte, rng io.Reader) (*serverHandshake, error) {
	flags := pkt[3]
	var buf [handshake.MaxInitiationSize]byte
	hs, hello, err := handshake.ReadInitiation(static, psk, pkt, rng, buf[:])
	if err != nil {
		return nil, err
	}
	h := &serverHandshake{hs: hs}
	in := &h.in
	in.size = len(pkt)
	in.peerMTU = int(hello.MTU())
	in.peerLanes = int(hello.Lanes())
	in.peerMinMTU = int(hello.MinMTU())
	in.suites, in.suiteFlags = hello.Suites(), hello.SuiteFlags()
	if flags&flagExtended != 0 {
		data, ok := hello.ConnectData(MaxConnectDataSize)
		if !ok {
			return nil, errHandshakeMalformed
		}
		in.ext = true
		in.connectData = append([]byte{}, data...)
	}
	ih := wire.InitiationHeader(pkt)
	in.senderIndex = ih.SenderIndex()
	in.cipher = Cipher(ih.Cipher())
	in.flags = flags
	in.ephemeral = ih.Ephemeral()
	if flags&flagIdentity != 0 {
		if in.peerKey, in.hasPeerKey = hs.PeerStatic(); !in.hasPeerKey {
			return nil, errHandshakeAuth
		}
	}
	in.timestamp = hello.Timestamp()
	req, ok := parseFECParams(hello.FEC())
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
	mtu, lanes        int
	suite, suiteFlags byte // the cipher suite (zero: absent) and wire.SuiteAESHardware
	code              uint16
	data              []byte
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
	rp := make([]byte, size-responseSize+responsePayloadSize)
	wire.PutAnswer(rp, wire.Answer{
		Status:     status,
		MTU:        uint16(info.mtu),
		Lanes:      uint8(info.lanes),
		SessionID:  sessionID,
		FEC:        decision.wire(),
		Token:      token,
		Code:       info.code,
		Suite:      info.suite,
		SuiteFlags: info.suiteFlags,
	}, status == statusOK, status == statusRejected, h.in.ext, data)
	resp, k, err := h.hs.WriteResponse(sessionID, rp)
	if err != nil {
		return resp, keys, errHandshakeAuth
	}
	if status != statusOK {
		return resp, keys, nil // a refusal gives no keys
	}
	keys.send, keys.recv = k.Send, k.Recv
	return resp, keys, nil
}

// respond is readInitiation and writeResponse with only the FEC policy
// applied: the whole server side for tests and fuzzing.
func respond(static *handshake.StaticKey, pkt []byte, sessionID uint32, policy fecParams, rng io.Reader) (initiation, [responseSize]byte, sessionKeys, error) {
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
