package fec

import (
	"fmt"
	"time"
)

// DefaultMaxGroupDelay is the MaxGroupDelay an Encoder uses when the field is
// zero. Implementation choice: about one RTT on a LAN-to-metro path, short
// enough that KCP's fast retransmit rarely beats the parity.
const DefaultMaxGroupDelay = 20 * time.Millisecond

// Encoder groups outgoing packets into Reed-Solomon groups of data shards
// followed by parity shards. It is not safe for concurrent use; see the
// package documentation.
type Encoder struct {
	// MaxGroupDelay bounds how long a partial group waits for parity:
	// Deadline returns the group's start plus MaxGroupDelay. If zero,
	// DefaultMaxGroupDelay is used. If negative, Deadline always returns the
	// zero time and partial groups get parity only when the caller calls
	// Flush on its own. It is read when Deadline is called.
	MaxGroupDelay time.Duration

	dataShards    int
	maxPacketSize int
	nextParity    int // set by SetParity, applied when a group starts

	// Current group.
	group      uint32
	parity     int       // parity count of the current group
	count      int       // data shards emitted so far
	regionSize int       // largest length prefix + packet so far
	start      time.Time // Encode call that opened the group

	// data[i] and parityB[j] hold whole shards: header, then region (after
	// the parity's length field), then room to pad the region to the size of
	// the group's largest.
	data    [][]byte
	parityB [][]byte
	shards  [][]byte // scratch: regions handed to reedsolomon
	codecs  codecCache
}

// NewEncoder returns an Encoder that puts dataShards packets in each group,
// followed by parityShards parity shards, for packets of up to maxPacketSize
// bytes. dataShards is 1..MaxDataShards, parityShards 0..MaxParityShards and
// maxPacketSize 1..MaxPacketSize; errors wrap ErrInvalidArgument and name the
// argument.
func NewEncoder(dataShards, parityShards, maxPacketSize int) (*Encoder, error) {
	if dataShards < 1 || dataShards > MaxDataShards {
		return nil, fmt.Errorf("%w: dataShards %d not in 1..%d", ErrInvalidArgument, dataShards, MaxDataShards)
	}
	if parityShards < 0 || parityShards > MaxParityShards {
		return nil, fmt.Errorf("%w: parityShards %d not in 0..%d", ErrInvalidArgument, parityShards, MaxParityShards)
	}
	if maxPacketSize < 1 || maxPacketSize > MaxPacketSize {
		return nil, fmt.Errorf("%w: maxPacketSize %d not in 1..%d", ErrInvalidArgument, maxPacketSize, MaxPacketSize)
	}
	e := &Encoder{
		dataShards:    dataShards,
		maxPacketSize: maxPacketSize,
		data:          make([][]byte, dataShards),
		shards:        make([][]byte, dataShards+MaxParityShards),
	}
	for i := range e.data {
		e.data[i] = make([]byte, HeaderSize+maxPacketSize)
	}
	if err := e.SetParity(parityShards); err != nil {
		return nil, err
	}
	if parityShards > 0 {
		// Build the steady-state codec now rather than on the first group.
		if _, err := e.codecs.get(dataShards, parityShards); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// SetParity sets the parity count of the groups that start after this call;
// the group in progress keeps its own. n is 0..MaxParityShards. With zero
// parity every packet is sent as a group of one data shard, so nothing waits
// for a group to fill and Deadline stays zero.
func (e *Encoder) SetParity(n int) error {
	if n < 0 || n > MaxParityShards {
		return fmt.Errorf("%w: parity %d not in 0..%d", ErrInvalidArgument, n, MaxParityShards)
	}
	for len(e.parityB) < n {
		e.parityB = append(e.parityB, make([]byte, HeaderSize+lengthSize+e.maxPacketSize))
	}
	e.nextParity = n
	return nil
}

// Parity returns the parity count last set by NewEncoder or SetParity, which
// applies from the next group on.
func (e *Encoder) Parity() int { return e.nextParity }

// Deadline returns when the partial group in progress should be flushed: its
// start plus MaxGroupDelay. It returns the zero time if no group is in
// progress or MaxGroupDelay is negative.
func (e *Encoder) Deadline() time.Time {
	if e.count == 0 || e.MaxGroupDelay < 0 {
		return time.Time{}
	}
	d := e.MaxGroupDelay
	if d == 0 {
		d = DefaultMaxGroupDelay
	}
	return e.start.Add(d)
}

// Encode adds pkt as the next data shard of the current group. It calls emit
// once with the data shard right away, so data is never delayed, and, when
// the group is full, once per parity shard. The slice passed to emit is the
// encoder's own buffer: emit must neither modify it nor keep it after
// returning (seal into a separate buffer). Encode returns ErrPacketTooLarge,
// emitting nothing, if pkt is longer than maxPacketSize.
func (e *Encoder) Encode(pkt []byte, now time.Time, emit func(shard []byte)) error {
	if len(pkt) > e.maxPacketSize {
		return ErrPacketTooLarge
	}
	if e.count == 0 {
		e.parity = e.nextParity
		e.start = now
	}
	dataCount := e.dataShards
	if e.parity == 0 {
		// Without parity there is nothing to wait for: each packet is its
		// own complete group.
		dataCount = 1
	}
	buf := e.data[e.count][:HeaderSize+len(pkt)]
	putHeader(buf, e.group, e.count, typeData, dataCount, e.parity, len(pkt))
	copy(buf[HeaderSize:], pkt)
	e.regionSize = max(e.regionSize, lengthSize+len(pkt))
	e.count++
	emit(buf)
	if e.count == dataCount {
		e.finish(emit)
	}
	return nil
}

// Flush closes the group in progress early: it emits parity computed over
// the data shards sent so far, and the parity headers carry that smaller data
// count. Callers call it once now >= Deadline() so that sparse traffic is
// protected too. It does nothing if no group is in progress. now is accepted
// for symmetry with Encode; Flush does not need it.
func (e *Encoder) Flush(now time.Time, emit func(shard []byte)) {
	if e.count == 0 {
		return
	}
	e.finish(emit)
}

// finish emits the parity of the current group and starts the next one.
func (e *Encoder) finish(emit func(shard []byte)) {
	k, p, size := e.count, e.parity, e.regionSize
	group := e.group
	e.group++
	e.count, e.regionSize = 0, 0
	if p == 0 {
		return
	}
	c, err := e.codecs.get(k, p)
	if err != nil {
		// Unreachable: k and p are within the limits reedsolomon accepts.
		// The data shards are already out, so the group just goes without
		// parity, as if it were lost.
		return
	}
	for i := range k {
		// Pad every region to the group's largest with zeros: the buffer
		// holds bytes of earlier, longer packets.
		n := HeaderSize + rawHeader(e.data[i][:HeaderSize]).Length()
		clear(e.data[i][n : shardHeaderSize+size])
		e.shards[i] = e.data[i][shardHeaderSize : shardHeaderSize+size]
	}
	for j := range p {
		e.shards[k+j] = e.parityB[j][HeaderSize : HeaderSize+size]
	}
	if err := c.rs.Encode(e.shards[:k+p]); err != nil {
		// Unreachable: the shard count and sizes match the codec. Same
		// fallback as above.
		return
	}
	for j := range p {
		buf := e.parityB[j][:HeaderSize+size]
		putHeader(buf, group, k+j, typeParity, k, p, size)
		emit(buf)
	}
}
