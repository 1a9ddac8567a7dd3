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
