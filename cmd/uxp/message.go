package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// A demo message is a fixed header followed by a payload. All integers are
// little-endian.
//
//	|--client u32--|--seq u32--|--sent i64--|--sum [8]byte--|--payload--|
//
// client is the sending client's index and seq counts that client's
// messages from 0. sent is when the message was built, in nanoseconds since
// the demo's start instant (a monotonic clock reading, so the echo's round
// trip is a plain subtraction). sum is SHA-256 over the first 16 header
// bytes and the payload, truncated to 8 bytes: it catches corruption
// anywhere in the message, header included.
//
// The payload is not random noise: it is derived from (seed, client, seq),
// so the receiver regenerates the exact bytes it expects and compares.

/* Implementation constants */
const (
	msgHeaderSize = 24
	offClient     = 0
	offSeq        = 4
	offSent       = 8
	offSum        = 16
	sumSize       = 8

	// Mixed payload sizes when -size is 0: from a few bytes to more than
	// one packet, so that KCP fragmentation is exercised.
	minMixedPayload = 16
	maxMixedPayload = 2000
)

// msgHeader is a view of a message's header bytes.
type msgHeader []byte

func (h msgHeader) Client() uint32 { return binary.LittleEndian.Uint32(h[offClient:]) }
func (h msgHeader) Seq() uint32    { return binary.LittleEndian.Uint32(h[offSeq:]) }

// Sent is the send instant as an offset from the demo's start.
func (h msgHeader) Sent() time.Duration {
	return time.Duration(binary.LittleEndian.Uint64(h[offSent:]))
}
func (h msgHeader) Sum() []byte { return h[offSum : offSum+sumSize] }

// Errors from parseMessage.
var (
	errShortMessage = errors.New("message shorter than its header")
	errBadChecksum  = errors.New("checksum mismatch")
)

// payloadGen produces the deterministic payload of every message.
type payloadGen struct {
	seed uint64
	size int // fixed payload size; 0 means mixed sizes
}

// rng returns the generator for one message. math/rand/v2 is fine here:
// the payload is test data, not a secret.
func (g payloadGen) rng(client, seq uint32) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed, uint64(client)<<32|uint64(seq)))
}

// payload appends the payload of message (client, seq) to dst.
func (g payloadGen) payload(dst []byte, client, seq uint32) []byte {
	r := g.rng(client, seq)
	n := g.size
	if n == 0 {
		n = minMixedPayload + r.IntN(maxMixedPayload-minMixedPayload+1)
	}
	for n > 0 {
		v := r.Uint64()
		for i := 0; i < 8 && n > 0; i++ {
			dst = append(dst, byte(v))
			v >>= 8
			n--
		}
	}
	return dst
}

// buildMessage appends message (client, seq), stamped with sent, to dst.
func (g payloadGen) buildMessage(dst []byte, client, seq uint32, sent time.Duration) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, client)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(sent))
	dst = append(dst, make([]byte, sumSize)...)
	dst = g.payload(dst, client, seq)
	m := dst[start:]
	sum := checksum(m)
	copy(msgHeader(m).Sum(), sum[:])
	return dst
}

func checksum(m []byte) [sumSize]byte {
	h := sha256.New()
	h.Write(m[:offSum])
	h.Write(m[msgHeaderSize:])
	var out [sumSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

// parseMessage checks m's length and checksum and returns its header and
// payload, which alias m. It never panics, whatever m holds.
func parseMessage(m []byte) (msgHeader, []byte, error) {
	if len(m) < msgHeaderSize {
		return nil, nil, fmt.Errorf("%w: %d bytes", errShortMessage, len(m))
	}
	h := msgHeader(m[:msgHeaderSize])
	if sum := checksum(m); string(sum[:]) != string(h.Sum()) {
		return nil, nil, errBadChecksum
	}
	return h, m[msgHeaderSize:], nil
}
