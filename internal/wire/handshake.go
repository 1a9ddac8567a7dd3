package wire

import "encoding/binary"

// Handshake fields that are not Noise's: the FEC parameters an initiation
// and a response carry, and the stateless reset. The handshake messages
// themselves are built by the root's handshake.go around Noise.

/* Specification constants */
const (
	// FECParamsSize is the FEC parameters' handshake form:
	// data u8 | parity u8 | flags u8 (bit 0: adaptive) | max parity u8.
	FECParamsSize = 4
	fecAdaptive   = 0x01

	// Stateless reset (type 5), 24 bytes:
	// type u8 | reserved (3, zero) | session ID u32 | token (16).
	ResetTokenSize = 16
	ResetSize      = 8 + ResetTokenSize
)

// FECParams is the FEC part of a handshake: a client's request, or the
// server's decision. ParseFECParams checks only the encoding; the bounds
// of the fec package are the caller's to check.
type FECParams struct {
	Data, Parity, MaxParity uint8
	Adaptive                bool
}

// PutFECParams writes p into b[:FECParamsSize].
func PutFECParams(b []byte, p FECParams) {
	_ = b[FECParamsSize-1]
	b[0], b[1], b[3] = p.Data, p.Parity, p.MaxParity
	b[2] = 0
	if p.Adaptive {
		b[2] = fecAdaptive
	}
}

// ParseFECParams decodes exactly FECParamsSize bytes whose reserved flag
// bits are zero.
func ParseFECParams(b []byte) (FECParams, bool) {
	if len(b) != FECParamsSize || b[2]&^fecAdaptive != 0 {
		return FECParams{}, false
	}
	return FECParams{Data: b[0], Parity: b[1], MaxParity: b[3], Adaptive: b[2]&fecAdaptive != 0}, true
}

// PutReset writes a stateless reset into b.
func PutReset(b *[ResetSize]byte, sessionID uint32, token *[ResetTokenSize]byte) {
	*b = [ResetSize]byte{MsgReset}
	binary.LittleEndian.PutUint32(b[4:8], sessionID)
	copy(b[8:], token[:])
}

// ParseReset checks a reset's size and reserved bytes and returns its
// session ID and token.
func ParseReset(b []byte) (sessionID uint32, token [ResetTokenSize]byte, ok bool) {
	if len(b) != ResetSize || b[0] != MsgReset || b[1]|b[2]|b[3] != 0 {
		return 0, token, false
	}
	copy(token[:], b[8:])
	return binary.LittleEndian.Uint32(b[4:8]), token, true
}

// Handshake payloads: what Noise encrypts inside an initiation and a
// response (docs/protocol.md sections 3.1 and 3.2). Both are views over the
// decrypted bytes; their size is checked by the caller, which knows the
// message's form from its flags.
/* Specification constants */
const (
	// Initiation payload: timestamp u64 (Unix ns) | FEC request (4) | max
	// packet size u16 | lane count u8 | min packet size u16 | suites u8 |
	// suite flags u8 | 5 reserved zero bytes; the extended form goes on
	// with data length u16 | data.
	InitiationPayloadSize = 24
	// Response payload: status u8 | max packet size u16 | lane count u8 |
	// session id u32 | FEC decision (4) | reset token (16) | suite u8 |
	// suite flags u8 | 2 reserved zero bytes; a rejection has code u16 |
	// reason length u8 | reason at offset 4 instead. The extended form
	// goes on with data length u16 | data.
	ResponsePayloadSize = 32
	// PlainReasonMax is the most reason a plain rejection carries.
	PlainReasonMax = ResponsePayloadSize - 7

	// SuiteAESHardware is the suite flags' bit 0: the sender has AES
	// instructions (crypto.HasAESHardware). Other flag bits are sent as
	// zero and ignored.
	SuiteAESHardware byte = 0x01
)

// SuiteBit is a suite's bit in an initiation's suites byte: bit n for
// suite n (1 ChaCha20-Poly1305, 2 Salsa20-Poly1305, 3 AES-256-GCM). A
// suites byte of zero means absent (a client from before suite
// negotiation).
func SuiteBit(suite byte) byte {
	if suite == 0 || suite > 7 {
		return 0
	}
	return 1 << suite
}

// Hello is the fixed part of an initiation payload.
type Hello struct {
	Timestamp   uint64 // Unix ns
	FEC         FECParams
	MTU, MinMTU uint16 // zero: absent (a client from before negotiation)
	Lanes       uint8
	// Suites is the set of cipher suites the client accepts (SuiteBit);
	// zero: absent. SuiteFlags holds SuiteAESHardware.
	Suites, SuiteFlags uint8
}

// PutHello writes h into b[:InitiationPayloadSize], and in the extended
// form (ext) the connect data after it: b must then hold
// InitiationPayloadSize+2+len(data) bytes.
func PutHello(b []byte, h Hello, ext bool, data []byte) {
	_ = b[InitiationPayloadSize-1]
	binary.LittleEndian.PutUint64(b[0:8], h.Timestamp)
	PutFECParams(b[8:12], h.FEC)
	binary.LittleEndian.PutUint16(b[12:14], h.MTU)
	b[14] = h.Lanes
	binary.LittleEndian.PutUint16(b[15:17], h.MinMTU)
	b[17], b[18] = h.Suites, h.SuiteFlags
	if ext {
		binary.LittleEndian.PutUint16(b[24:26], uint16(len(data)))
		copy(b[26:], data)
	}
}

// InitiationPayload is a view of a decrypted initiation payload of at least
// InitiationPayloadSize bytes.
type InitiationPayload []byte

// Timestamp is the client's clock, Unix ns.
func (p InitiationPayload) Timestamp() uint64 { return binary.LittleEndian.Uint64(p[0:8]) }

// FEC is the FEC request, for ParseFECParams.
func (p InitiationPayload) FEC() []byte { return p[8:12] }

// MTU is the client's maximum packet size; zero: absent.
func (p InitiationPayload) MTU() uint16 { return binary.LittleEndian.Uint16(p[12:14]) }

// Lanes is the client's lane count; zero: absent.
func (p InitiationPayload) Lanes() uint8 { return p[14] }

// MinMTU is the smallest packet size the client accepts; zero: absent.
func (p InitiationPayload) MinMTU() uint16 { return binary.LittleEndian.Uint16(p[15:17]) }

// Suites is the set of cipher suites the client accepts, one SuiteBit
// each; zero: absent (a client from before suite negotiation).
func (p InitiationPayload) Suites() uint8 { return p[17] }

// SuiteFlags are the client's suite flags (SuiteAESHardware).
func (p InitiationPayload) SuiteFlags() uint8 { return p[18] }

// ConnectData is the connect data of the extended form: false when its
// length is over max or past the payload.
func (p InitiationPayload) ConnectData(max int) ([]byte, bool) {
	if len(p) < InitiationPayloadSize+2 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(p[24:26]))
	if n > max || 26+n > len(p) {
		return nil, false
	}
	return p[26 : 26+n], true
}

// Answer is what a response payload carries besides Noise.
type Answer struct {
	Status    byte
	MTU       uint16
	Lanes     uint8
	SessionID uint32                // statusOK only
	FEC       FECParams             // statusOK only
	Token     *[ResetTokenSize]byte // statusOK only
	Code      uint16                // a rejection's code
	// Suite is the cipher suite the session uses (statusOK) or the one
	// the server requires (a refusal for the cipher); zero: absent (a
	// server from before suite negotiation). SuiteFlags holds
	// SuiteAESHardware. Neither is written in a rejection (statusRejected),
	// whose reason takes those bytes.
	Suite, SuiteFlags uint8
}

// PutAnswer writes a into b[:ResponsePayloadSize] with ok being whether
// a.Status is the accepting one and reject whether it is a rejection, whose
// plain reason (at most PlainReasonMax bytes of it) is written too unless
// ext; in the extended form the data (the reason or the accept data)
// follows the fixed part.
func PutAnswer(b []byte, a Answer, ok, reject, ext bool, data []byte) {
	_ = b[ResponsePayloadSize-1]
	b[0] = a.Status
	binary.LittleEndian.PutUint16(b[1:3], a.MTU)
	b[3] = a.Lanes
	switch {
	case ok:
		binary.LittleEndian.PutUint32(b[4:8], a.SessionID)
		PutFECParams(b[8:12], a.FEC)
		copy(b[12:12+ResetTokenSize], a.Token[:])
	case reject:
		binary.LittleEndian.PutUint16(b[4:6], a.Code)
		if !ext {
			n := copy(b[7:], data[:min(len(data), PlainReasonMax)])
			b[6] = byte(n)
		}
	}
	if !reject {
		b[28], b[29] = a.Suite, a.SuiteFlags
	}
	if ext {
		binary.LittleEndian.PutUint16(b[ResponsePayloadSize:], uint16(len(data)))
		copy(b[ResponsePayloadSize+2:], data)
	}
}

// ResponsePayload is a view of a decrypted response payload of at least
// ResponsePayloadSize bytes.
type ResponsePayload []byte

// Status is the server's status code.
func (p ResponsePayload) Status() byte { return p[0] }

// MTU is the server's maximum packet size; zero: absent.
func (p ResponsePayload) MTU() uint16 { return binary.LittleEndian.Uint16(p[1:3]) }

// Lanes is the server's lane count; zero: absent.
func (p ResponsePayload) Lanes() uint8 { return p[3] }

// SessionID is the session ID an accepting response repeats.
func (p ResponsePayload) SessionID() uint32 { return binary.LittleEndian.Uint32(p[4:8]) }

// FEC is the FEC decision, for ParseFECParams.
func (p ResponsePayload) FEC() []byte { return p[8:12] }

// Token is the stateless reset token.
func (p ResponsePayload) Token() (t [ResetTokenSize]byte) {
	copy(t[:], p[12:12+ResetTokenSize])
	return t
}

// Suite is the server's cipher suite: the session's (statusOK) or the one
// it requires (a refusal); zero: absent. Not valid in a rejection.
func (p ResponsePayload) Suite() uint8 { return p[28] }

// SuiteFlags are the server's suite flags (SuiteAESHardware). Not valid in
// a rejection.
func (p ResponsePayload) SuiteFlags() uint8 { return p[29] }

// RejectCode is a rejection's code.
func (p ResponsePayload) RejectCode() uint16 { return binary.LittleEndian.Uint16(p[4:6]) }

// PlainReason is a plain rejection's reason: false when its length is over
// PlainReasonMax.
func (p ResponsePayload) PlainReason() (string, bool) {
	n := int(p[6])
	if n > PlainReasonMax {
		return "", false
	}
	return string(p[7 : 7+n]), true
}

// Ext is the data of the extended form: false when its declared length is
// not the rest of the payload.
func (p ResponsePayload) Ext() ([]byte, bool) {
	if len(p) < ResponsePayloadSize+2 {
		return nil, false
	}
	ext := p[ResponsePayloadSize+2:]
	return ext, int(binary.LittleEndian.Uint16(p[ResponsePayloadSize:])) == len(ext)
}

// Handshake message headers (docs/protocol.md sections 3.1, 3.2 and 3.6).
//
// Initiation, 8 bytes, also the Noise prologue:
//
//	| type | version | cipher | flags | sender idx (u32) | e (32) ...
//
// Response, 12 bytes; cookie reply, the first 8 of the same form:
//
//	| type | rsv (3, zero) | session id (u32) | receiver idx (u32) |
//
// A cookie reply carries the initiation's sender index where a response
// carries the session ID.
/* Specification constants */
const (
	InitiationHeaderSize = 8
	ResponseHeaderSize   = 12
	EphemeralSize        = 32

	// Initiation flags.
	FlagIK       byte = 1 << 0 // Noise IK: the client sends its static key
	FlagPSK      byte = 1 << 1 // psk2: a pre-shared key is mixed into the response
	FlagExtended byte = 1 << 2 // the payload carries connect data
	KnownFlags        = FlagIK | FlagPSK | FlagExtended
)

// PutInitiationHeader writes an initiation's header into
// b[:InitiationHeaderSize].
func PutInitiationHeader(b []byte, cipher, flags byte, senderIndex uint32) {
	_ = b[InitiationHeaderSize-1]
	b[0], b[1], b[2], b[3] = MsgInitiation, ProtocolVersion, cipher, flags
	binary.LittleEndian.PutUint32(b[4:8], senderIndex)
}

// InitiationHeader is a view of an initiation of at least
// InitiationHeaderSize+EphemeralSize bytes.
type InitiationHeader []byte

// Cipher is the packet AEAD the client asks for.
func (h InitiationHeader) Cipher() byte { return h[2] }

// Flags are the initiation's flags.
func (h InitiationHeader) Flags() byte { return h[3] }

// SenderIndex is the client's handshake index.
func (h InitiationHeader) SenderIndex() uint32 { return binary.LittleEndian.Uint32(h[4:8]) }

// Ephemeral is the client's ephemeral public key, in the clear.
func (h InitiationHeader) Ephemeral() (e [EphemeralSize]byte) {
	copy(e[:], h[InitiationHeaderSize:InitiationHeaderSize+EphemeralSize])
	return e
}

// PutResponseHeader writes a response's header into b[:ResponseHeaderSize].
func PutResponseHeader(b []byte, sessionID, receiverIndex uint32) {
	_ = b[ResponseHeaderSize-1]
	b[0], b[1], b[2], b[3] = MsgResponse, 0, 0, 0
	binary.LittleEndian.PutUint32(b[4:8], sessionID)
	binary.LittleEndian.PutUint32(b[8:12], receiverIndex)
}

// ResponseHeader is a view of a response of at least ResponseHeaderSize
// bytes, or of a cookie reply's first 8.
type ResponseHeader []byte

// Valid reports whether the header is a response's: its type and zero
// reserved bytes.
func (h ResponseHeader) Valid() bool {
	return len(h) >= ResponseHeaderSize && h[0] == MsgResponse && h[1]|h[2]|h[3] == 0
}

// SessionID is the session ID a response gives; in a cookie reply, the
// initiation's sender index.
func (h ResponseHeader) SessionID() uint32 { return binary.LittleEndian.Uint32(h[4:8]) }

// ReceiverIndex is the client's handshake index a response answers.
func (h ResponseHeader) ReceiverIndex() uint32 { return binary.LittleEndian.Uint32(h[8:12]) }
