package handshake

import (
	"io"

	"github.com/flynn/noise"

	"github.com/uxp-go/uxp/internal/wire"
)

// Noise NK and IK, with or without psk2 (docs/protocol.md sections 4.1 and
// 4.2). The root's handshake.go builds and reads the messages; this is the
// protocol's choice of pattern, prologue and sizes.

/* Specification constants */
const (
	InitiationSize   = 112 // NK
	InitiationIKSize = 160 // IK: plus the encrypted static key (48)
	ResponseSize     = 92

	prologueLabel = "uxp/1 Noise_NK"
)

// InitiationLen is the exact length of an initiation with these flags, the
// extended flag aside: the length of its fixed part.
func InitiationLen(flags byte) int {
	if flags&wire.FlagIK != 0 {
		return InitiationIKSize
	}
	return InitiationSize
}

// Prologue is the Noise prologue of the initiation whose header is hdr:
// the label and the 8 header bytes, so that none of them can be altered.
func Prologue(hdr []byte) []byte {
	p := make([]byte, 0, len(prologueLabel)+wire.InitiationHeaderSize)
	p = append(p, prologueLabel...)
	return append(p, hdr[:wire.InitiationHeaderSize]...)
}

// NoiseConfig is the flynn/noise configuration of one side of a handshake
// with these initiation flags: NK, or IK when the client sends a static
// key, with psk2 when the flags say so. The caller adds the keys.
func NoiseConfig(flags byte, initiator bool, prologue []byte, rng io.Reader, suite *X25519Suite) noise.Config {
	cfg := noise.Config{
		CipherSuite: suite,
		Random:      rng,
		Pattern:     noise.HandshakeNK,
		Initiator:   initiator,
		Prologue:    prologue,
	}
	if flags&wire.FlagIK != 0 {
		cfg.Pattern = noise.HandshakeIK
	}
	if flags&wire.FlagPSK != 0 {
		cfg.PresharedKeyPlacement = 2
	}
	return cfg
}
