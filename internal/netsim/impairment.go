package netsim

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

/* Specification constants */

// MaxDatagram is the largest UDP payload over IPv4 (65535 minus the 8-byte
// UDP header and the 20-byte IPv4 header). Longer writes fail with
// [ErrMessageTooLarge].
const MaxDatagram = 65507

/* Implementation constants */

// DefaultReorderDelay is the extra delay of a reordered packet when
// [Impairment.Reorder] is positive and [Impairment.ReorderDelay] is zero.
const DefaultReorderDelay = 10 * time.Millisecond

// Impairment describes what happens to packets on one direction of a link.
// The zero value is a perfect link: no loss, no delay, in-order delivery.
//
// The decisions for one packet are made in this order: Blackhole, MTU,
// Drop, Loss, Duplicate, then for each copy Jitter and Reorder.
type Impairment struct {
	// Loss is the probability in [0, 1] that a packet is dropped.
	// Zero means no random loss.
	Loss float64

	// Duplicate is the probability in [0, 1] that a packet that was not
	// dropped is delivered twice. The two copies get independent jitter
	// and reorder decisions. Zero means no duplication.
	Duplicate float64

	// Reorder is the probability in [0, 1] that a copy is held back by an
	// extra ReorderDelay, so that packets sent after it overtake it.
	// Zero means no reordering beyond what Jitter causes.
	Reorder float64

	// ReorderDelay is the extra delay of a reordered copy. If zero and
	// Reorder is positive, DefaultReorderDelay (10ms) is used. Negative is
	// invalid.
	ReorderDelay time.Duration

	// Delay is the one-way base delay. Zero delivers synchronously inside
	// WriteTo (unless Jitter or Reorder add a delay). Negative is invalid.
	Delay time.Duration

	// Jitter adds a uniformly random extra delay in [0, Jitter) to each
	// copy. Jitter reorders packets sent closer together than Jitter.
	// Zero means no jitter. Negative is invalid.
	Jitter time.Duration

	// Blackhole drops every packet when true.
	Blackhole bool

	// MTU, if positive, is the largest packet (UDP payload) the link
	// carries: longer packets are dropped silently, as a path that does
	// not fragment and filters ICMP does. Zero means no limit. Negative
	// is invalid.
	MTU int

	// Drop, if not nil, is called with each packet before Loss is applied;
	// returning true drops the packet. It lets a test drop chosen packets,
	// e.g. exactly shards 3, 7 and 9 of each FEC group. p is valid only
	// during the call and must not be modified. Drop is called on the
	// writer's goroutine with no netsim lock held, so it may be called
	// concurrently by several writers and must be safe for that.
	Drop func(p []byte) bool
}

// Validate reports whether the probabilities are in [0, 1] and the durations
// are non-negative. The error names the offending field and wraps
// [ErrInvalidImpairment].
func (i Impairment) Validate() error {
	probs := []struct {
		name string
		v    float64
	}{{"Loss", i.Loss}, {"Duplicate", i.Duplicate}, {"Reorder", i.Reorder}}
	for _, p := range probs {
		// Written as a negated range check so that NaN is rejected too.
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%w: %s = %v, want a probability in [0, 1]", ErrInvalidImpairment, p.name, p.v)
		}
	}
	durs := []struct {
		name string
		v    time.Duration
	}{{"ReorderDelay", i.ReorderDelay}, {"Delay", i.Delay}, {"Jitter", i.Jitter}}
	for _, d := range durs {
		if d.v < 0 {
			return fmt.Errorf("%w: %s = %v, want a non-negative duration", ErrInvalidImpairment, d.name, d.v)
		}
	}
	if i.MTU < 0 {
		return fmt.Errorf("%w: MTU = %d, want a non-negative size", ErrInvalidImpairment, i.MTU)
	}
	return nil
}

// mustValidate panics if imp is invalid. The setters that take an
// Impairment have no error result; an invalid one is a bug in the test or in
// flag handling, so it fails loudly. Callers with user input call Validate
// first.
func mustValidate(imp Impairment) {
	if err := imp.Validate(); err != nil {
		panic(err)
	}
}

func (i *Impairment) reorderDelay() time.Duration {
	if i.ReorderDelay == 0 {
		return DefaultReorderDelay
	}
	return i.ReorderDelay
}

// Stats counts packets. All counters only grow.
//
// Sent counts packets accepted by WriteTo (and, for a [Network], by Inject).
// Delivered counts copies that reached the destination: put in a receive
// queue for a [Network], or written to the inner socket without error for a
// [Conn]. Dropped counts packets and copies that did not: impairment drops,
// unknown destinations, full receive queues, write errors and packets still
// in flight at Close. Duplicated counts extra copies made by Duplicate, and
// Reordered counts copies held back by Reorder. Once nothing is in flight,
// Sent + Duplicated == Delivered + Dropped.
type Stats struct {
	Sent, Delivered, Dropped, Duplicated, Reordered uint64
}

// counters is the concurrency-safe form of Stats.
type counters struct {
	sent, delivered, dropped, duplicated, reordered atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Sent:       c.sent.Load(),
		Delivered:  c.delivered.Load(),
		Dropped:    c.dropped.Load(),
		Duplicated: c.duplicated.Load(),
		Reordered:  c.reordered.Load(),
	}
}

// verdict is the fate of one written packet.
type verdict struct {
	copies int              // 0 (dropped), 1, or 2 (duplicated)
	delay  [2]time.Duration // per copy
	held   [2]bool          // per copy: held back by Reorder
}

// source is the simulation's random number generator: a PCG from
// math/rand/v2, seeded by the caller so that runs are reproducible. It is
// not a cryptographic RNG and must only drive the simulation.
type source struct {
	mu sync.Mutex // guards r; rand.Rand is not safe for concurrent use
	r  *rand.Rand
}

func newSource(seed uint64) *source {
	// The second PCG word only needs to differ between seeds; the golden
	// ratio constant spreads nearby seeds apart.
	return &source{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// decide applies imp to p. Random numbers are drawn only for features that
// are enabled, so the same seed and the same sequence of sends through the
// same impairments give the same verdicts.
func (s *source) decide(imp *Impairment, p []byte) verdict {
	var v verdict
	if imp.Blackhole || imp.MTU > 0 && len(p) > imp.MTU {
		return v
	}
	// Drop is user code: call it before taking the lock.
	if imp.Drop != nil && imp.Drop(p) {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if imp.Loss > 0 && s.r.Float64() < imp.Loss {
		return v
	}
	v.copies = 1
	if imp.Duplicate > 0 && s.r.Float64() < imp.Duplicate {
		v.copies = 2
	}
	for i := range v.copies {
		d := imp.Delay
		if imp.Jitter > 0 {
			d += time.Duration(s.r.Int64N(int64(imp.Jitter)))
		}
		if imp.Reorder > 0 && s.r.Float64() < imp.Reorder {
			d += imp.reorderDelay()
			v.held[i] = true
		}
		v.delay[i] = d
	}
	return v
}

// count records v in c, except for deliveries, which the caller counts when
// they happen.
func (c *counters) count(v *verdict) {
	c.sent.Add(1)
	switch v.copies {
	case 0:
		c.dropped.Add(1)
	case 2:
		c.duplicated.Add(1)
	}
	for i := range v.copies {
		if v.held[i] {
			c.reordered.Add(1)
		}
	}
}
