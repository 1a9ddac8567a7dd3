package fec

import (
	"fmt"
	"math/bits"
	"time"
)

/* Implementation constants */
const (
	// groupWindow is how far, in group IDs, a group may fall behind the
	// newest group seen before it is dropped, and how many recent group IDs
	// the decoder remembers as finished. A power of two.
	groupWindow = 1024

	// MaxGroups is the largest maxGroups NewDecoder accepts. Half the window
	// leaves room for reordering between the groups kept.
	MaxGroups = groupWindow / 2
)

// DecoderStats counts what a Decoder has seen. All counts only grow.
type DecoderStats struct {
	DataShards   uint64 // well-formed data shards received
	ParityShards uint64 // well-formed parity shards received
	Recovered    uint64 // data shards reconstructed from parity and delivered
	Expired      uint64 // groups dropped (age, distance, capacity) while data was missing
	Malformed    uint64 // shards rejected with an error (see ErrMalformed)
	Duplicates   uint64 // shards whose group already had a shard at that index
	// OverBudget counts shards not stored because Limits.MaxBytes could
	// not hold them even after dropping every other group.
	OverBudget uint64
	// Throttled counts recoveries given up because building their codec
	// would have exceeded the codec build rate (see Limits).
	Throttled uint64
	// CodecBuilds counts Reed-Solomon codecs built: one per (data, parity)
	// pair in use, more only when the cache of 64 overflows.
	CodecBuilds uint64
	// Late counts shards ignored because their group had already finished,
	// been dropped, or fallen more than 1024 groups behind the newest. On a
	// lossless link the parity of every group arrives after its data and
	// lands here, so Late is not an error count.
	Late uint64
}

// group is the state of one incomplete group.
type group struct {
	id         uint32
	created    time.Time
	dataCount  int  // lowered by a parity shard of a flushed group
	parity     int  // parity count
	confirmed  bool // dataCount came from a parity shard
	regionSize int  // parity region size; 0 until a parity shard arrives
	dataSeen   uint64
	paritySeen uint32
	nData      int
	nParity    int
	// shards[i] holds a copy of region i (data 0..dataCount-1, then parity)
	// while the group may still need it for recovery; nil otherwise.
	shards [][]byte
	pos    int // index in Decoder.active
}

// Decoder reassembles packets from data and parity shards. It is not safe
// for concurrent use; see the package documentation.
type Decoder struct {
	maxGroups     int
	maxAge        time.Duration
	maxPacketSize int

	hasNewest bool
	newest    uint32                   // newest group ID seen
	done      [groupWindow / 64]uint64 // finished groups, by id % groupWindow
	slots     [groupWindow]*group      // active groups, by id % groupWindow
	active    []*group                 // active groups, unordered

	freeGroups []*group
	// Region buffers (decoder_mem.go): freeBufs by size class; held is
	// the bytes of every region buffer the decoder made and still owns,
	// stored or pooled, freeBytes those pooled.
	freeBufs     [bufClasses][][]byte
	held         int
	freeBytes    int
	freeKeep     int
	scratchBytes int
	limits       Limits
	codecs       codecCache
	// Codec build credit, in shards (decoder_mem.go): credit now, at most
	// creditMax; buildCost is the cost of every build so far.
	credit, creditMax int
	buildCost         uint64

	// Recovery scratch.
	scratch [][]byte // one buffer per parity shard
	shards  [][]byte
	missing [MaxParityShards]int
	rows    [MaxParityShards]int
	mat     [MaxParityShards * MaxParityShards]byte
	inv     [MaxParityShards * MaxParityShards]byte

	stats DecoderStats
}

// NewDecoder returns a Decoder that keeps at most maxGroups incomplete groups
// (1..MaxGroups), drops groups older than maxAge (> 0), and accepts packets of
// up to maxPacketSize bytes (1..MaxPacketSize). Errors wrap
// ErrInvalidArgument and name the argument.
func NewDecoder(maxGroups int, maxAge time.Duration, maxPacketSize int) (*Decoder, error) {
	if maxGroups < 1 || maxGroups > MaxGroups {
		return nil, fmt.Errorf("%w: maxGroups %d not in 1..%d", ErrInvalidArgument, maxGroups, MaxGroups)
	}
	if maxAge <= 0 {
		return nil, fmt.Errorf("%w: maxAge %v not positive", ErrInvalidArgument, maxAge)
	}
	if maxPacketSize < 1 || maxPacketSize > MaxPacketSize {
		return nil, fmt.Errorf("%w: maxPacketSize %d not in 1..%d", ErrInvalidArgument, maxPacketSize, MaxPacketSize)
	}
	d := &Decoder{
		maxGroups:     maxGroups,
		maxAge:        maxAge,
		maxPacketSize: maxPacketSize,
		active:        make([]*group, 0, maxGroups),
		shards:        make([][]byte, MaxDataShards+MaxParityShards),
	}
	_ = d.SetLimits(Limits{}) // no limits: cannot fail
	return d, nil
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// Decode consumes one shard. A data shard's packet is delivered at once
// through deliver(pkt, false). When a group that is missing data shards has
// as many shards as data shards, the missing packets are reconstructed and
// delivered through deliver(pkt, true) in index order before Decode returns.
// No data shard is delivered twice. pkt is only valid during the call to
// deliver, which must not call back into the Decoder.
//
// Decode returns an error matching ErrMalformed for a shard it rejects (the
// caller counts it); such a shard changes nothing, except that
// ErrRecoveryFailed also drops the group it completed. Shards of finished, dropped
// or too old groups, and duplicates, are counted and ignored with a nil error.
func (d *Decoder) Decode(shard []byte, now time.Time, deliver func(pkt []byte, recovered bool)) error {
	s, err := parseShard(shard, d.maxPacketSize)
	if err == nil && (s.data > d.limits.MaxData || s.par > d.limits.MaxParity) {
		err = ErrShardCount // more than the session negotiated
	}
	if err != nil {
		d.stats.Malformed++
		return err
	}
	d.credit = min(d.credit+1, d.creditMax)
	if s.parity {
		d.stats.ParityShards++
	} else {
		d.stats.DataShards++
	}

	if !d.hasNewest {
		d.hasNewest, d.newest = true, s.group
	} else if diff := int32(s.group - d.newest); diff > 0 {
		d.advance(s.group)
	} else if diff <= -groupWindow {
		// Too far behind to tell whether it finished: assume it did.
		d.stats.Late++
		return nil
	}
	slot := s.group % groupWindow
	if d.done[slot/64]&(1<<(slot%64)) != 0 {
		d.stats.Late++
		return nil
	}
	g := d.slots[slot]
	if g == nil {
		if !s.parity && s.data == 1 {
			// A group of one data shard is complete on arrival; skip the
			// bookkeeping. This is every packet when the sender has no parity.
			deliver(s.payload(), false)
			d.markDone(s.group)
			return nil
		}
		g = d.newGroup(&s, now)
	} else if err := g.check(&s); err != nil {
		d.stats.Malformed++
		return err
	}
	if s.parity {
		err = d.addParity(g, &s, deliver)
	} else {
		err = d.addData(g, &s, deliver)
	}
	if err != nil {
		d.stats.Malformed++
	}
	return err
}

// check reports whether s fits the group's state.
func (g *group) check(s *shardInfo) error {
	if s.par != g.parity {
		return ErrShardMismatch
	}
	if s.parity {
		if g.confirmed && s.data != g.dataCount ||
			!g.confirmed && (s.data > g.dataCount || g.dataSeen>>s.data != 0) {
			return ErrShardMismatch
		}
		if g.regionSize != 0 && len(s.region) != g.regionSize {
			return ErrShardMismatch
		}
		for _, b := range g.shards[:g.dataCount] {
			if len(b) > len(s.region) {
				return ErrShardMismatch
			}
		}
		return nil
	}
	if g.confirmed && (s.data < g.dataCount || s.index >= g.dataCount) ||
		!g.confirmed && s.data != g.dataCount {
		return ErrShardMismatch
	}
	if g.regionSize != 0 && len(s.region) > g.regionSize {
		return ErrShardMismatch
	}
	return nil
}

func (d *Decoder) addData(g *group, s *shardInfo, deliver func([]byte, bool)) error {
	bit := uint64(1) << s.index
	if g.dataSeen&bit != 0 {
		d.stats.Duplicates++
		return nil
	}
	g.dataSeen |= bit
	g.nData++
	deliver(s.payload(), false)
	if g.nData == g.dataCount {
		d.finish(g)
		return nil
	}
	if g.parity == 0 {
		// Nothing can be recovered, so the packet need not be kept.
		return nil
	}
	if !d.store(g, s.index, s.region) {
		return nil
	}
	return d.tryRecover(g, deliver)
}

func (d *Decoder) addParity(g *group, s *shardInfo, deliver func([]byte, bool)) error {
	j := s.index - s.data
	if g.paritySeen&(1<<j) != 0 {
		d.stats.Duplicates++
		return nil
	}
	if !g.confirmed {
		g.confirmed = true
		if s.data < g.dataCount {
			// The sender flushed the group early; shards past s.data were
			// never sent (check verified none arrived).
			// No parity was stored yet, so only nil slots move.
			g.dataCount = s.data
			g.shards = g.shards[:s.data+g.parity]
		}
		if g.nData == g.dataCount {
			d.finish(g)
			return nil
		}
	}
	if !d.store(g, g.dataCount+j, s.region) {
		return nil
	}
	g.regionSize = len(s.region)
	g.paritySeen |= 1 << j
	g.nParity++
	return d.tryRecover(g, deliver)
}

func (d *Decoder) newGroup(s *shardInfo, now time.Time) *group {
	if len(d.active) == d.maxGroups {
		d.Expire(now)
	}
	if len(d.active) == d.maxGroups {
		// Still full: make room by dropping the oldest group.
		d.drop(d.oldest(nil))
	}
	var g *group
	if n := len(d.freeGroups); n > 0 {
		g = d.freeGroups[n-1]
		d.freeGroups = d.freeGroups[:n-1]
	} else {
		g = new(group)
	}
	shards := g.shards
	*g = group{
		id:        s.group,
		created:   now,
		dataCount: s.data,
		parity:    s.par,
		confirmed: s.parity,
		pos:       len(d.active),
	}
	n := s.data + s.par
	if cap(shards) < n {
		shards = make([][]byte, n, d.limits.MaxData+d.limits.MaxParity)
	}
	g.shards = shards[:n]
	d.active = append(d.active, g)
	d.slots[s.group%groupWindow] = g
	return g
}

// oldest returns the active group created first, other than skip; nil if
// there is none. Groups created in the same instant go by group ID
// (wrap-around safe), so the one the sender started first goes first.
func (d *Decoder) oldest(skip *group) *group {
	var o *group
	for _, g := range d.active {
		if g == skip {
			continue
		}
		if o == nil || g.created.Before(o.created) ||
			g.created.Equal(o.created) && int32(g.id-o.id) < 0 {
			o = g
		}
	}
	return o
}

// finish retires a group whose data is complete or recovered.
func (d *Decoder) finish(g *group) {
	d.release(g)
	d.markDone(g.id)
}

// drop retires a group before it completed.
func (d *Decoder) drop(g *group) {
	if g.nData < g.dataCount {
		d.stats.Expired++
	}
	d.finish(g)
}

// release returns a group and its buffers to the pools.
func (d *Decoder) release(g *group) {
	for i, b := range g.shards {
		if b != nil {
			d.putBuf(b)
			g.shards[i] = nil
		}
	}
	last := d.active[len(d.active)-1]
	last.pos = g.pos
	d.active[g.pos] = last
	d.active[len(d.active)-1] = nil
	d.active = d.active[:len(d.active)-1]
	d.slots[g.id%groupWindow] = nil
	d.freeGroups = append(d.freeGroups, g)
}

func (d *Decoder) markDone(id uint32) {
	slot := id % groupWindow
	d.done[slot/64] |= 1 << (slot % 64)
}

// advance makes id the newest group. Groups that fall out of the window are
// dropped and their slots forgotten, so the window's new IDs start unfinished.
func (d *Decoder) advance(id uint32) {
	diff := id - d.newest
	d.newest = id
	if diff >= groupWindow {
		for len(d.active) > 0 {
			d.drop(d.active[len(d.active)-1])
		}
		clear(d.done[:])
		return
	}
	for n := uint32(1); n <= diff; n++ {
		slot := (id - diff + n) % groupWindow
		if g := d.slots[slot]; g != nil {
			// The group there is groupWindow IDs older than the new one.
			d.drop(g)
		}
		d.done[slot/64] &^= 1 << (slot % 64)
	}
}

// Expire drops the groups created maxAge or more before now, counting those
// still missing data in Stats().Expired. Call it from the session's timer;
// Decode only expires by age when it needs room for a new group.
func (d *Decoder) Expire(now time.Time) {
	// Backwards, because drop moves the last group into the freed place.
	for i := len(d.active) - 1; i >= 0; i-- {
		if g := d.active[i]; now.Sub(g.created) >= d.maxAge {
			d.drop(g)
		}
	}
}

// Groups returns the number of incomplete groups held, at most maxGroups.
func (d *Decoder) Groups() int { return len(d.active) }

// missingData returns the indices of the data shards g lacks.
func (g *group) missingData(dst []int) []int {
	seen := g.dataSeen | ^uint64(0)<<g.dataCount // a shift by 64 gives 0
	dst = dst[:0]
	for m := ^seen; m != 0; m &= m - 1 {
		dst = append(dst, bits.TrailingZeros64(m))
	}
	return dst
}
