package fec

import "encoding/binary"

/* Specification constants: these fix the wire format. */
const (
	// shardHeaderSize is the size of the fields before the length field:
	// group (4) | index (1) | type (1) | data count (1) | parity count (1).
	shardHeaderSize = 8

	// lengthSize is the size of the length field after the header: the
	// packet length in a data shard (it opens the shard's region, so a
	// recovered region carries it too), the parity size in a parity shard.
	lengthSize = 2

	// HeaderSize is the number of bytes Encoder adds in front of each
	// packet: the shard header plus the 2-byte length. A caller that wants
	// to build shards in place reserves this much room. A parity shard is
	// HeaderSize bytes plus 2 plus the largest packet of its group.
	HeaderSize = shardHeaderSize + lengthSize

	// MaxDataShards is the largest data-shard count a group may have.
	MaxDataShards = 64

	// MaxParityShards is the largest parity-shard count a group may have.
	MaxParityShards = 32

	// MaxPacketSize is the largest packet whose parity size, the packet
	// length plus lengthSize, still fits the 16-bit length field.
	MaxPacketSize = 1<<16 - 1 - lengthSize

	// typeData and typeParity are the values of the type byte. Any other
	// value is malformed; the odd values make a shard of some other protocol
	// unlikely to parse.
	typeData   = 0xF1
	typeParity = 0xF2
)

// Field offsets inside rawHeader.
const (
	offGroup  = 0
	offIndex  = 4
	offType   = 5
	offData   = 6
	offParity = 7
	offLength = shardHeaderSize
)

// rawHeader is a view of the HeaderSize bytes every shard starts with. All
// multi-byte fields are little-endian, matching the KCP segments carried
// inside the shards.
type rawHeader [HeaderSize]byte

// Group returns the group sequence ID. It wraps from 0xFFFFFFFF to 0.
func (h rawHeader) Group() uint32 { return binary.LittleEndian.Uint32(h[offGroup:]) }

// Index returns the shard's position in its group: 0..data-1 for data
// shards, data..data+parity-1 for parity shards.
func (h rawHeader) Index() int { return int(h[offIndex]) }

// Type returns typeData or typeParity (or garbage, before validation).
func (h rawHeader) Type() byte { return h[offType] }

// DataShards returns the group's data-shard count. Data shards carry the
// count the encoder was configured with; parity shards carry the number of
// data shards the group actually has, which is smaller after a Flush.
func (h rawHeader) DataShards() int { return int(h[offData]) }

// ParityShards returns the group's parity-shard count.
func (h rawHeader) ParityShards() int { return int(h[offParity]) }

// Length returns the length field: the packet length of a data shard, the
// parity size of a parity shard. Either way it is the number of bytes after
// the header.
func (h rawHeader) Length() int { return int(binary.LittleEndian.Uint16(h[offLength:])) }

// putHeader writes a shard header at the start of b, which must hold at
// least HeaderSize bytes.
func putHeader(b []byte, group uint32, index int, typ byte, data, parity, length int) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint32(b[offGroup:], group)
	b[offIndex] = byte(index)
	b[offType] = typ
	b[offData] = byte(data)
	b[offParity] = byte(parity)
	binary.LittleEndian.PutUint16(b[offLength:], uint16(length))
}

// shardInfo is a validated shard.
type shardInfo struct {
	group  uint32
	index  int
	parity bool
	data   int // data-shard count from the header
	par    int // parity-shard count from the header
	// region is the part covered by Reed-Solomon: for a data shard the
	// length field and the packet, for a parity shard the parity bytes
	// after the length field.
	region []byte
}

// payload returns the packet of a data shard.
func (s *shardInfo) payload() []byte { return s.region[lengthSize:] }

// parseShard validates every header field of shard and returns its parts.
// It never panics: all lengths are checked before slicing. maxPacketSize
// bounds both the packet of a data shard and the region of a parity shard.
func parseShard(shard []byte, maxPacketSize int) (shardInfo, error) {
	if len(shard) < HeaderSize {
		return shardInfo{}, ErrShortShard
	}
	h := rawHeader(shard[:HeaderSize])
	s := shardInfo{
		group: h.Group(),
		index: h.Index(),
		data:  h.DataShards(),
		par:   h.ParityShards(),
	}
	if s.data < 1 || s.data > MaxDataShards || s.par > MaxParityShards {
		return shardInfo{}, ErrShardCount
	}
	// Every shard is sent unpadded, so its length field must match its size
	// exactly; any truncation is caught here.
	n := h.Length()
	if n != len(shard)-HeaderSize {
		return shardInfo{}, ErrShardLength
	}
	switch h.Type() {
	case typeData:
		if s.index >= s.data {
			return shardInfo{}, ErrShardIndex
		}
		if n > maxPacketSize {
			return shardInfo{}, ErrShardLength
		}
		s.region = shard[shardHeaderSize:]
	case typeParity:
		s.parity = true
		if s.index < s.data || s.index >= s.data+s.par {
			return shardInfo{}, ErrShardIndex
		}
		// The parity covers a length field plus a packet.
		if n < lengthSize || n > lengthSize+maxPacketSize {
			return shardInfo{}, ErrShardLength
		}
		s.region = shard[HeaderSize:]
	default:
		return shardInfo{}, ErrShardType
	}
	return s, nil
}

// IsParity reports whether shard, as emitted by an Encoder, is a parity
// shard. It does not validate the shard.
func IsParity(shard []byte) bool { return len(shard) > offType && shard[offType] == typeParity }
