package handshake

import (
	"crypto/subtle"
	"errors"
	"io"

	"github.com/flynn/noise"

	"github.com/uxp-go/uxp/internal/wire"
)

// The Noise half of the handshake messages: building and reading the
// initiation and the response around the payloads of internal/wire. What
// the payloads mean (statuses, FEC, negotiation, the application's data)
// is the root's handshake.go.

/* Specification constants */
const (
	// Extended handshake messages (connect data, accept data, reasons).
	MinExtInitiation  = 400  // keeps every extended response smaller
	MaxInitiationSize = 1200 // the safe path MTU: never fragmented
)

// The server must never answer with more bytes than it received.
var _ = [InitiationSize - ResponseSize]struct{}{}

// Errors of the handshake's cheap checks.
var (
	ErrMAC = errors.New("uxp: handshake mac1 mismatch")
	ErrPSK = errors.New("uxp: initiation's psk flag does not match the server's configuration")
)

// Keys are the two directional transport keys a handshake yields.
type Keys struct {
	Send, Recv [32]byte
}

// ClientConfig is what an initiation is built from.
type ClientConfig struct {
	Server [32]byte     // the server's static public key
	Static *noise.DHKey // the client's static key pair; nil: anonymous (NK)
	PSK    []byte       // nil or 32 bytes
	Cipher byte
	Index  uint32 // the client's handshake index
	Hello  wire.Hello
	// ConnectData non-nil selects the extended form. The caller bounds its
	// length so that the initiation fits MaxInitiationSize.
	ConnectData []byte
}

// Client is the initiator's state between sending the initiation and
// receiving the response.
type Client struct {
	hs     *noise.HandshakeState
	index  uint32
	ext    bool   // the extended form: the response is extended too
	packet []byte // sent as is; only mac2 changes between copies
}

// NewClient builds the initiation. rng supplies the ephemeral key
// (crypto/rand in production).
func NewClient(cfg ClientConfig, rng io.Reader) (*Client, error) {
	var flags byte
	if cfg.Static != nil {
		flags |= wire.FlagIK
	}
	if cfg.PSK != nil {
		flags |= wire.FlagPSK
	}
	size := InitiationLen(flags)
	if cfg.ConnectData != nil {
		flags |= wire.FlagExtended
		size = max(MinExtInitiation, size+2+len(cfg.ConnectData))
	}
	c := &Client{index: cfg.Index, ext: flags&wire.FlagExtended != 0, packet: make([]byte, size)}
	p := c.packet
	wire.PutInitiationHeader(p, cfg.Cipher, flags, cfg.Index)
	ncfg := NoiseConfig(flags, true, Prologue(p), rng, NewX25519Suite(nil))
	ncfg.PeerStatic = cfg.Server[:]
	if cfg.Static != nil {
		ncfg.StaticKeypair = *cfg.Static
	}
	ncfg.PresharedKey = cfg.PSK
	hs, err := noise.NewHandshakeState(ncfg)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, wire.InitiationPayloadSize+size-InitiationLen(flags))
	wire.PutHello(payload, cfg.Hello, c.ext, cfg.ConnectData)
	msg, _, _, err := hs.WriteMessage(p[wire.InitiationHeaderSize:wire.InitiationHeaderSize], payload)
	if err != nil {
		return nil, err
	}
	if len(msg) != MAC1Offset(p)-wire.InitiationHeaderSize {
		return nil, ErrMalformed
	}
	k := MAC1Key(cfg.Server, cfg.PSK)
	mac := ComputeMAC1(&k, p)
	copy(p[MAC1Offset(p):], mac[:])
	c.hs = hs
	return c, nil
}

// Initiation returns the packet as built, mac2 zero.
func (c *Client) Initiation() []byte { return c.packet }

// Index is the client's handshake index.
func (c *Client) Index() uint32 { return c.index }

// Response is a response whose Noise message authenticated.
type Response struct {
	SessionID uint32
	Payload   wire.ResponsePayload
	Ext       []byte // the extended form's data; nil in the plain form
	Keys      Keys
}

// ReadResponse authenticates the server's response: its exact size (up to
// maxExt more bytes in the extended form), header, index and Noise message.
// Any failure leaves the handshake usable for a later, genuine response:
// flynn/noise rolls its symmetric state back when decryption fails.
func (c *Client) ReadResponse(pkt []byte, maxExt int) (Response, error) {
	var r Response
	size := len(pkt) == ResponseSize
	if c.ext {
		size = len(pkt) >= ResponseSize+2 && len(pkt) <= ResponseSize+maxExt
	}
	rh := wire.ResponseHeader(pkt)
	if !size || !rh.Valid() || rh.ReceiverIndex() != c.index {
		return r, ErrMalformed
	}
	payload := make([]byte, 0, len(pkt)-ResponseSize+wire.ResponsePayloadSize)
	out, send, recv, err := c.hs.ReadMessage(payload, pkt[wire.ResponseHeaderSize:])
	if err != nil || send == nil || recv == nil || len(out) != len(pkt)-ResponseSize+wire.ResponsePayloadSize {
		return r, ErrAuth
	}
	r.SessionID, r.Payload = rh.SessionID(), wire.ResponsePayload(out)
	if c.ext {
		var ok bool
		if r.Ext, ok = r.Payload.Ext(); !ok {
			return r, ErrMalformed
		}
	}
	r.Keys = Keys{Send: send.UnsafeKey(), Recv: recv.UnsafeKey()}
	return r, nil
}

// CheckInitiation does the cheap checks on an initiation: exact length for
// its flags, type, version, a cipher validCipher knows, known flags, and
// mac1. It does no Diffie-Hellman. mac2 is not looked at here: only a
// server under load checks it (CookieChecker).
func CheckInitiation(pkt []byte, key *[32]byte, validCipher func(byte) bool) error {
	if len(pkt) < wire.InitiationHeaderSize || pkt[0] != wire.MsgInitiation || pkt[1] != wire.ProtocolVersion || pkt[3]&^wire.KnownFlags != 0 {
		return ErrMalformed
	}
	size := len(pkt) == InitiationLen(pkt[3])
	if pkt[3]&wire.FlagExtended != 0 {
		size = len(pkt) >= max(MinExtInitiation, InitiationLen(pkt[3])+2) && len(pkt) <= MaxInitiationSize
	}
	if !size || !validCipher(pkt[2]) {
		return ErrMalformed
	}
	mac := ComputeMAC1(key, pkt)
	if subtle.ConstantTimeCompare(mac[:], pkt[MAC1Offset(pkt):MAC2Offset(pkt)]) != 1 {
		return ErrMAC
	}
	return nil
}

// Server is the responder's state between reading an initiation and
// writing the response. It lives only inside one call of the server's
// handshake loop.
type Server struct {
	hs          *noise.HandshakeState
	senderIndex uint32
	size        int // the initiation's length, which bounds the answer
}

// ReadInitiation processes an initiation that passed CheckInitiation. For
// NK it costs one X25519 (es), for IK two (es, ss). psk is the server's
// pre-shared key (nil for none); an initiation whose psk flag does not
// match is rejected before any Diffie-Hellman. The Server is returned by
// value, for the caller to keep in its own state. The payload is decrypted
// into buf (MaxInitiationSize bytes do) and returned as a view of it. On
// error nothing was created and nothing must be sent.
func ReadInitiation(static *StaticKey, psk []byte, pkt []byte, rng io.Reader, buf []byte) (Server, wire.InitiationPayload, error) {
	flags := pkt[3]
	if (flags&wire.FlagPSK != 0) != (psk != nil) {
		return Server{}, nil, ErrPSK
	}
	cfg := NoiseConfig(flags, false, Prologue(pkt), rng, NewX25519Suite(static))
	cfg.StaticKeypair = static.DH
	cfg.PresharedKey = psk
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return Server{}, nil, err
	}
	want := wire.InitiationPayloadSize + len(pkt) - InitiationLen(flags)
	out, _, _, err := hs.ReadMessage(buf[:0], pkt[wire.InitiationHeaderSize:MAC1Offset(pkt)])
	if err != nil || len(out) != want {
		return Server{}, nil, ErrAuth
	}
	s := Server{hs: hs, senderIndex: wire.InitiationHeader(pkt).SenderIndex(), size: len(pkt)}
	return s, wire.InitiationPayload(out), nil
}

// PeerStatic is the client's static public key of an IK initiation; false
// for NK.
func (s *Server) PeerStatic() ([32]byte, bool) {
	var k [32]byte
	ps := s.hs.PeerStatic()
	if len(ps) != len(k) {
		return k, false
	}
	copy(k[:], ps)
	return k, true
}

// WriteResponse seals payload into a response for sessionID of exactly
// ResponseSize-wire.ResponsePayloadSize+len(payload) bytes. It costs one
// key generation and two X25519 (ee, se). It fails rather than answer with
// as many bytes as the initiation had: the server never amplifies.
func (s *Server) WriteResponse(sessionID uint32, payload []byte) ([]byte, Keys, error) {
	size := ResponseSize - wire.ResponsePayloadSize + len(payload)
	resp := make([]byte, size)
	wire.PutResponseHeader(resp, sessionID, s.senderIndex)
	msg, recv, send, err := s.hs.WriteMessage(resp[wire.ResponseHeaderSize:wire.ResponseHeaderSize], payload)
	if err != nil || recv == nil || send == nil || len(msg) != size-wire.ResponseHeaderSize || size >= s.size {
		return resp, Keys{}, ErrAuth
	}
	// Split gives (initiator->responder, responder->initiator).
	return resp, Keys{Send: send.UnsafeKey(), Recv: recv.UnsafeKey()}, nil
}
