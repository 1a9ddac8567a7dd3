package wire

import (
	"encoding/binary"
	"errors"
)

// Lane messages (docs/protocol.md section 3.8): every reliable message a
// lane's KCP carries starts with a kind byte.
//
//	plain:    0 | payload
//	skip:     1                              (an abandoned message)
//	deadline: 2 | uvarint deadline | uvarint payload length | payload
//
// The deadline is on the receiver's clock, in microseconds since its epoch;
// 0 means none.
/* Specification constants */
const (
	LaneMsgPlain    byte = 0
	LaneMsgSkip     byte = 1
	LaneMsgDeadline byte = 2
)

// Lane message errors. ErrLaneEmpty is a message without its kind byte;
// the others break the protocol.
var (
	ErrLaneEmpty  = errors.New("uxp: empty lane message")
	ErrLaneHeader = errors.New("uxp: bad lane message header")
	ErrLaneKind   = errors.New("uxp: bad lane message kind")
)

// LaneMessage is a decoded lane message. Payload aliases the input.
type LaneMessage struct {
	Kind     byte
	Deadline uint64 // LaneMsgDeadline only; 0: none
	// Short is set for a deadline message shorter than its declared
	// length: some of its segments were replaced by skip markers, and it
	// counts as skipped.
	Short   bool
	Payload []byte
}

// ParseLaneMessage decodes one reassembled lane message.
func ParseLaneMessage(b []byte) (LaneMessage, error) {
	if len(b) == 0 {
		return LaneMessage{}, ErrLaneEmpty
	}
	m := LaneMessage{Kind: b[0]}
	switch b[0] {
	case LaneMsgPlain:
		m.Payload = b[1:]
	case LaneMsgSkip:
	case LaneMsgDeadline:
		dl, k1 := binary.Uvarint(b[1:])
		if k1 <= 0 {
			return LaneMessage{}, ErrLaneHeader
		}
		m.Deadline = dl
		size, k2 := binary.Uvarint(b[1+k1:])
		if k2 <= 0 || size != uint64(len(b)-1-k1-k2) {
			m.Short = true
			return m, nil
		}
		m.Payload = b[1+k1+k2:]
	default:
		return LaneMessage{}, ErrLaneKind
	}
	return m, nil
}

// AppendLaneHeader appends the header of a lane message of kind with size
// payload bytes to b; deadline is used by LaneMsgDeadline only.
func AppendLaneHeader(b []byte, kind byte, deadline uint64, size uint32) []byte {
	b = append(b, kind)
	if kind == LaneMsgDeadline {
		b = binary.AppendUvarint(b, deadline)
		b = binary.AppendUvarint(b, uint64(size))
	}
	return b
}
