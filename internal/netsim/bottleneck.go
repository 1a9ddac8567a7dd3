package netsim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrInvalidBottleneck is wrapped by the error from [BottleneckConfig.Validate].
var ErrInvalidBottleneck = errors.New("netsim: invalid bottleneck")

// RateStep changes a [Bottleneck]'s rate At a time after the bottleneck's
// start, as a mobile link does when the radio conditions change.
type RateStep struct {
	// At is the offset from the start time given to [NewBottleneck]. Must be
	// non-negative; steps must be in increasing order of At.
	At time.Duration
	// Rate is the new rate in bits per second. Must be positive.
	Rate int64
}

// BottleneckConfig describes one direction of a rate-limited link with a
// FIFO queue in front of it, like a tbf qdisc on a router's egress followed
// by a propagation delay.
type BottleneckConfig struct {
	// Rate is the initial link rate in bits per second. Must be positive.
	Rate int64

	// QueueDelay limits the queue by time: a packet that would wait longer
	// than QueueDelay before its transmission starts is dropped (tail
	// drop), as tbf's latency parameter does. Zero means no time limit.
	// Negative is invalid.
	QueueDelay time.Duration

	// QueueBytes limits the queue by size: a packet that would make the
	// bytes waiting or in transmission exceed QueueBytes is dropped. Zero
	// means no byte limit. Negative is invalid. With both limits zero the
	// queue is unbounded.
	QueueBytes int

	// Delay is the propagation delay added after a packet has been
	// transmitted. Zero means none. Negative is invalid.
	Delay time.Duration

	// Schedule is an optional list of rate changes. nil keeps Rate forever.
	Schedule []RateStep
}

// Validate reports whether c is usable; the error wraps
// [ErrInvalidBottleneck] and names the field.
func (c BottleneckConfig) Validate() error {
	bad := func(field string, v any) error {
		return fmt.Errorf("%w: %s = %v", ErrInvalidBottleneck, field, v)
	}
	switch {
	case c.Rate <= 0:
		return bad("Rate", c.Rate)
	case c.QueueDelay < 0:
		return bad("QueueDelay", c.QueueDelay)
	case c.QueueBytes < 0:
		return bad("QueueBytes", c.QueueBytes)
	case c.Delay < 0:
		return bad("Delay", c.Delay)
	}
	for i, s := range c.Schedule {
		if s.At < 0 || s.Rate <= 0 || i > 0 && s.At <= c.Schedule[i-1].At {
			return bad(fmt.Sprintf("Schedule[%d]", i), s)
		}
	}
	return nil
}

// BottleneckStats counts what a [Bottleneck] did. All counters only grow
// except QueuedBytes.
type BottleneckStats struct {
	Enqueued      uint64        // packets accepted into the queue
	EnqueuedBytes uint64        // bytes accepted into the queue
	Dropped       uint64        // packets tail-dropped at the queue
	DroppedBytes  uint64        // bytes tail-dropped at the queue
	MaxQueueDelay time.Duration // longest wait of an accepted packet before its transmission
}

// Bottleneck is a pure model of one direction of a rate-limited link: a
// FIFO queue with tail drop, a serializer running at the (possibly
// scheduled) rate, and a propagation delay. It does no I/O and reads no
// clock: every method takes now, which must not go backwards.
//
// A Bottleneck is not safe for concurrent use; [BottleneckConn] wraps one
// with a lock for use as a net.PacketConn.
type Bottleneck struct {
	cfg   BottleneckConfig
	start time.Time

	busyUntil time.Time // when the serializer finishes the last accepted packet
	inQueue   []queued  // accepted packets not yet fully transmitted, FIFO
	queued    int       // sum of inQueue sizes
	stats     BottleneckStats
}

// queued is a packet in the queue or on the wire of the serializer.
type queued struct {
	done time.Time // transmission end
	size int
}

// NewBottleneck returns a bottleneck whose schedule starts at start. It
// panics if cfg is invalid (a bug in the test); check user input with
// [BottleneckConfig.Validate] first.
func NewBottleneck(cfg BottleneckConfig, start time.Time) *Bottleneck {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.Schedule = slices.Clone(cfg.Schedule)
	return &Bottleneck{cfg: cfg, start: start, busyUntil: start}
}

// Enqueue offers a packet of size bytes at time now. If the queue accepts
// it, ok is true, deliverAt is when its last bit arrives at the far end
// (transmission end plus Delay), and wait is how long it queues before its
// transmission starts. A dropped packet returns ok false.
func (b *Bottleneck) Enqueue(now time.Time, size int) (deliverAt time.Time, wait time.Duration, ok bool) {
	b.expire(now)
	txStart := now
	if b.busyUntil.After(now) {
		txStart = b.busyUntil
	}
	wait = txStart.Sub(now)
	if b.cfg.QueueDelay > 0 && wait > b.cfg.QueueDelay ||
		b.cfg.QueueBytes > 0 && b.queued+size > b.cfg.QueueBytes {
		b.stats.Dropped++
		b.stats.DroppedBytes += uint64(size)
		return time.Time{}, 0, false
	}
	done := b.finish(txStart, float64(size)*8)
	b.busyUntil = done
	b.inQueue = append(b.inQueue, queued{done: done, size: size})
	b.queued += size
	b.stats.Enqueued++
	b.stats.EnqueuedBytes += uint64(size)
	b.stats.MaxQueueDelay = max(b.stats.MaxQueueDelay, wait)
	return done.Add(b.cfg.Delay), wait, true
}

// QueueDelay returns how long a packet arriving at now would wait before
// its transmission starts.
func (b *Bottleneck) QueueDelay(now time.Time) time.Duration {
	return max(0, b.busyUntil.Sub(now))
}

// QueuedBytes returns the bytes waiting or in transmission at now.
func (b *Bottleneck) QueuedBytes(now time.Time) int {
	b.expire(now)
	return b.queued
}

// Rate returns the link rate in bits per second at now.
func (b *Bottleneck) Rate(now time.Time) int64 {
	r := b.cfg.Rate
	off := now.Sub(b.start)
	for _, s := range b.cfg.Schedule {
		if s.At > off {
			break
		}
		r = s.Rate
	}
	return r
}

// Stats returns the counters.
func (b *Bottleneck) Stats() BottleneckStats { return b.stats }

// expire forgets packets whose transmission has ended by now.
func (b *Bottleneck) expire(now time.Time) {
	i := 0
	for i < len(b.inQueue) && !b.inQueue[i].done.After(now) {
		b.queued -= b.inQueue[i].size
		i++
	}
	if i > 0 {
		b.inQueue = append(b.inQueue[:0], b.inQueue[i:]...)
	}
}

// finish returns when a transmission of bits that starts at from ends,
// following the rate schedule across its steps, so a packet queued before a
// rate change is sent at the new rate from the change on.
func (b *Bottleneck) finish(from time.Time, bits float64) time.Time {
	t := from
	for {
		rate := float64(b.Rate(t))
		next, hasNext := b.nextStep(t)
		need := time.Duration(math.Ceil(bits / rate * float64(time.Second)))
		if !hasNext || !t.Add(need).After(next) {
			return t.Add(need)
		}
		bits -= rate * next.Sub(t).Seconds()
		t = next
		if bits <= 0 {
			return t
		}
	}
}

// nextStep returns the time of the first schedule step after t.
func (b *Bottleneck) nextStep(t time.Time) (time.Time, bool) {
	off := t.Sub(b.start)
	for _, s := range b.cfg.Schedule {
		if s.At > off {
			return b.start.Add(s.At), true
		}
	}
	return time.Time{}, false
}
