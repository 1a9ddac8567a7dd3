package wire

import "encoding/binary"

// Frame bodies. Each fixed-size body has a Put function that writes exactly
// its size and a Parse function that accepts exactly its size.

/* Specification constants */
const (
	PingSize           = 24                 // client time u64 ns | last server time u64 ns | held for u64 ns
	PongSize           = 16                 // client time echoed u64 ns | server time u64 ns
	LossSize           = 6                  // loss u16 (1/10000) | packets expected u32
	PathTokenSize      = 16                 // path challenge and response: token
	LatestSize         = 5                  // channel u8 | sequence u32, before the message
	MTUProbeIDSize     = 4                  // probe id u32, then zero padding to the probe size
	MTUAckSize         = MTUProbeIDSize + 2 // probe id u32 | size of the probe datagram u16
	FragmentHeaderSize = 6                  // id u16 | offset u16 | total u16
	LaneHeaderSize     = 1                  // lane u8, before the KCP segments

	// Close: code u16 | lane count u8 | messages sent u32 per lane | reason.
	CloseHeaderSize = 3
	CloseLegacySize = 1 // the earlier layout: u8 code only

	// Rekey: kind u8 | epoch u32 | ephemeral public key (32).
	RekeyKeySize      = 32
	RekeySize         = 1 + 4 + RekeyKeySize
	RekeyInit    byte = 0
	RekeyAck     byte = 1
)

// Ping is a heartbeat ping body.
type Ping struct {
	Clock    uint64 // the client's clock, ns since its epoch
	LastPong uint64 // the server time of the last pong; 0 for none
	Held     uint64 // how long the client held that pong, ns
}

// PutPing writes p into b[:PingSize].
func PutPing(b []byte, p Ping) {
	_ = b[PingSize-1]
	binary.LittleEndian.PutUint64(b[0:], p.Clock)
	binary.LittleEndian.PutUint64(b[8:], p.LastPong)
	binary.LittleEndian.PutUint64(b[16:], p.Held)
}

// ParsePing decodes a ping body of exactly PingSize bytes.
func ParsePing(b []byte) (Ping, bool) {
	if len(b) != PingSize {
		return Ping{}, false
	}
	return Ping{
		Clock:    binary.LittleEndian.Uint64(b[0:]),
		LastPong: binary.LittleEndian.Uint64(b[8:]),
		Held:     binary.LittleEndian.Uint64(b[16:]),
	}, true
}

// Pong is a heartbeat pong body.
type Pong struct {
	Echo  uint64 // the ping's client time, echoed
	Clock uint64 // the server's clock, ns since its epoch
}

// PutPong writes p into b[:PongSize].
func PutPong(b []byte, p Pong) {
	_ = b[PongSize-1]
	binary.LittleEndian.PutUint64(b[0:], p.Echo)
	binary.LittleEndian.PutUint64(b[8:], p.Clock)
}

// ParsePong decodes a pong body of exactly PongSize bytes.
func ParsePong(b []byte) (Pong, bool) {
	if len(b) != PongSize {
		return Pong{}, false
	}
	return Pong{Echo: binary.LittleEndian.Uint64(b[0:]), Clock: binary.LittleEndian.Uint64(b[8:])}, true
}

// Loss is an FEC loss report body.
type Loss struct {
	Loss     uint16 // loss rate in 1/10000
	Expected uint32 // packets the rate is measured over
}

// PutLoss writes l into b[:LossSize].
func PutLoss(b []byte, l Loss) {
	_ = b[LossSize-1]
	binary.LittleEndian.PutUint16(b[0:], l.Loss)
	binary.LittleEndian.PutUint32(b[2:], l.Expected)
}

// ParseLoss decodes a loss body of exactly LossSize bytes.
func ParseLoss(b []byte) (Loss, bool) {
	if len(b) != LossSize {
		return Loss{}, false
	}
	return Loss{Loss: binary.LittleEndian.Uint16(b[0:]), Expected: binary.LittleEndian.Uint32(b[2:])}, true
}

// Rekey is a rekey frame body.
type Rekey struct {
	Kind  byte // RekeyInit or RekeyAck
	Epoch uint32
	Pub   [RekeyKeySize]byte
}

// PutRekey writes r into b[:RekeySize].
func PutRekey(b []byte, r Rekey) {
	_ = b[RekeySize-1]
	b[0] = r.Kind
	binary.LittleEndian.PutUint32(b[1:5], r.Epoch)
	copy(b[5:RekeySize], r.Pub[:])
}

// ParseRekey decodes a rekey body: exactly RekeySize bytes and a known kind.
func ParseRekey(b []byte) (Rekey, bool) {
	var r Rekey
	if len(b) != RekeySize || b[0] > RekeyAck {
		return r, false
	}
	r.Kind = b[0]
	r.Epoch = binary.LittleEndian.Uint32(b[1:5])
	copy(r.Pub[:], b[5:])
	return r, true
}

// Close is a parsed close frame body. Counts aliases the body.
type Close struct {
	Code   uint16
	Counts []byte // u32 per lane; nil in the legacy layout
	Reason string
}

// Lanes is the number of per-lane counts.
func (c Close) Lanes() int { return len(c.Counts) / 4 }

// Count is lane i's count of messages sent.
func (c Close) Count(i int) uint32 { return binary.LittleEndian.Uint32(c.Counts[4*i:]) }

// AppendCloseHeader appends a close body's code and lane count to b; the
// caller appends lanes counts with AppendCloseCount, then the reason.
func AppendCloseHeader(b []byte, code uint16, lanes int) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	return append(b, byte(lanes))
}

// AppendCloseCount appends one lane's count of messages sent to b.
func AppendCloseCount(b []byte, n uint32) []byte { return binary.LittleEndian.AppendUint32(b, n) }

// ParseClose checks a close body's lengths exactly: 1 to maxLanes counts
// and a reason of at most maxReason bytes, or the legacy one-byte layout.
func ParseClose(body []byte, maxLanes, maxReason int) (Close, bool) {
	if len(body) == CloseLegacySize {
		return Close{Code: uint16(body[0])}, true
	}
	if len(body) < CloseHeaderSize {
		return Close{}, false
	}
	n := int(body[2])
	end := CloseHeaderSize + 4*n
	if n == 0 || n > maxLanes || len(body) < end || len(body)-end > maxReason {
		return Close{}, false
	}
	return Close{
		Code:   binary.LittleEndian.Uint16(body),
		Counts: body[CloseHeaderSize:end],
		Reason: string(body[end:]),
	}, true
}

// PutLatest writes a latest-datagram header into b[:LatestSize].
func PutLatest(b []byte, channel uint8, seq uint32) {
	_ = b[LatestSize-1]
	b[0] = channel
	binary.LittleEndian.PutUint32(b[1:], seq)
}

// ParseLatest splits a latest-datagram body into its header and a message
// of at least one byte.
func ParseLatest(b []byte) (channel uint8, seq uint32, msg []byte, ok bool) {
	if len(b) <= LatestSize {
		return 0, 0, nil, false
	}
	return b[0], binary.LittleEndian.Uint32(b[1:]), b[LatestSize:], true
}

// PutMTUProbe writes a probe id into b[:MTUProbeIDSize]; the rest of the
// probe body is zero padding.
func PutMTUProbe(b []byte, id uint32) { binary.LittleEndian.PutUint32(b, id) }

// ParseMTUProbe reads a probe body's id. The body is at least the id; the
// padding is not checked.
func ParseMTUProbe(b []byte) (id uint32, ok bool) {
	if len(b) < MTUProbeIDSize {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

// MTUAck is an MTU probe acknowledgment body.
type MTUAck struct {
	ID   uint32 // the probe's id
	Size uint16 // the size of the probe datagram
}

// PutMTUAck writes a into b[:MTUAckSize].
func PutMTUAck(b []byte, a MTUAck) {
	_ = b[MTUAckSize-1]
	binary.LittleEndian.PutUint32(b, a.ID)
	binary.LittleEndian.PutUint16(b[4:], a.Size)
}

// ParseMTUAck decodes an ack body of exactly MTUAckSize bytes.
func ParseMTUAck(b []byte) (MTUAck, bool) {
	if len(b) != MTUAckSize {
		return MTUAck{}, false
	}
	return MTUAck{ID: binary.LittleEndian.Uint32(b), Size: binary.LittleEndian.Uint16(b[4:])}, true
}

// Fragment is a fragment frame's header.
type Fragment struct {
	ID     uint16 // the inner frame's id
	Offset uint16 // where the bytes go in the inner frame
	Total  uint16 // the inner frame's size
}

// PutFragment writes f into b[:FragmentHeaderSize].
func PutFragment(b []byte, f Fragment) {
	_ = b[FragmentHeaderSize-1]
	binary.LittleEndian.PutUint16(b[0:], f.ID)
	binary.LittleEndian.PutUint16(b[2:], f.Offset)
	binary.LittleEndian.PutUint16(b[4:], f.Total)
}

// ParseFragment splits a fragment body into its header and at least one
// byte of data, which must lie within the inner frame of at most maxTotal
// bytes.
func ParseFragment(b []byte, maxTotal int) (Fragment, []byte, bool) {
	if len(b) <= FragmentHeaderSize {
		return Fragment{}, nil, false
	}
	f := Fragment{
		ID:     binary.LittleEndian.Uint16(b[0:]),
		Offset: binary.LittleEndian.Uint16(b[2:]),
		Total:  binary.LittleEndian.Uint16(b[4:]),
	}
	data := b[FragmentHeaderSize:]
	if int(f.Total) > maxTotal || int(f.Offset)+len(data) > int(f.Total) {
		return Fragment{}, nil, false
	}
	return f, data, true
}
