package arq

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/kcpx"
)

// Test harness: two sessions' Lanes connected by an in-memory pipe that
// loses frames by a seeded generator, run under testing/synctest so that
// now, KCP's own clock and Ms(now) all read the bubble's fake clock.

const (
	testMTU    = 1200
	testWindow = 128
)

// tune is the KCP configuration of the tests: no-delay mode, as uxp's
// default.
func tune(k *kcp.KCP) {
	k.NoDelay(1, 10, 2, 1)
	k.WndSize(testWindow, testWindow)
	k.SetMtu(testMTU)
}

func testConfig(lanes int) Config {
	return Config{
		Conv:         7,
		Priorities:   make([]int, lanes),
		SendWindow:   testWindow,
		RecvWindow:   testWindow,
		MaxFrag:      254,
		RecvSlack:    testWindow / 8,
		RecvBudget:   2 * (testWindow + testWindow/8),
		MaxFragments: 255,
		TuneMTU:      testMTU,
	}
}

// frame is one lane frame on the pipe.
type frame struct {
	lane int
	b    []byte
	s    Sent
}

// end is one side: its Lanes and what they reported (the Output).
type end struct {
	t      testing.TB
	ls     *Lanes
	sh     Shard
	epoch  time.Time
	timing Timing

	out     []frame
	sent    []Sent     // every Output, in order
	got     [][][]byte // delivered messages, by lane
	acks    []Ack
	lat     []time.Duration
	events  map[Event]int
	full    bool // Deliver asks to stop
	blocked bool // the application takes nothing: input does not deliver
	dropped int  // frames the pipe lost on the way from this side
}

func newEnd(t testing.TB, cfg Config, epoch time.Time) *end {
	return newEndTuned(t, cfg, epoch, tune)
}

// newEndTuned is newEnd with KCPs tuned by tf.
func newEndTuned(t testing.TB, cfg Config, epoch time.Time, tf func(*kcp.KCP)) *end {
	t.Helper()
	e := &end{t: t, epoch: epoch, events: map[Event]int{}}
	e.sh = Shard{KCP: kcpx.NewFactory(kcpx.Options{Tune: tf}), RecvBuf: make([]byte, 1<<16)}
	e.got = make([][][]byte, len(cfg.Priorities))
	e.ls = New(cfg, &e.sh, e, testMTU)
	t.Cleanup(e.ls.Close)
	return e
}

func (e *end) Output(lane int, segs []byte, s Sent) {
	e.out = append(e.out, frame{lane, bytes.Clone(segs), s})
	e.sent = append(e.sent, s)
}

func (e *end) Deliver(lane int, msg []byte) bool {
	e.got[lane] = append(e.got[lane], bytes.Clone(msg))
	return !e.full
}

func (e *end) Acked(_ int, a Ack)      { e.acks = append(e.acks, a) }
func (e *end) Latency(d time.Duration) { e.lat = append(e.lat, d) }
func (e *end) Event(ev Event)          { e.events[ev]++ }
func (e *end) Timing() Timing          { return e.timing }
func (e *end) LocalClock(now time.Time) uint64 {
	return uint64(now.Sub(e.epoch) / time.Microsecond)
}

// PeerDeadline: both ends share the bubble's clock and epoch.
func (e *end) PeerDeadline(expiry time.Time) uint64 {
	return max(uint64(expiry.Sub(e.epoch)/time.Microsecond), 1)
}

// take returns the frames sent so far.
func (e *end) take() []frame { f := e.out; e.out = nil; return f }

// write enqueues msg on lane and flushes, as the root's pump does.
func (e *end) write(now time.Time, lane int, msg []byte, expiry time.Time) {
	e.ls.Enqueue(now, lane, msg, expiry, NoLimit)
	e.ls.Admit(now, NoLimit)
	e.ls.Flush(now)
}

// input hands frames to e's lanes and delivers, then flushes what they
// owe, as the root's receive path and pump do.
func (e *end) input(now time.Time, fs []frame) {
	for _, f := range fs {
		e.ls.Input(now, f.lane, f.b, kcp.IKCP_PACKET_REGULAR)
		if !e.blocked {
			require.NoError(e.t, e.ls.DeliverLane(now, f.lane))
		}
	}
	if len(fs) > 0 {
		e.ls.Flush(now)
	}
}

// pair is two ends and the pipe between them.
type pair struct {
	a, b *end
	loss float64 // probability that a frame is lost, each way
	rng  *rand.Rand
	// drop, when set, decides instead of loss: true loses the frame.
	drop func(from *end, f frame) bool
}

func newPair(t testing.TB, cfg Config, loss float64, seed uint64) *pair {
	t.Helper()
	epoch := time.Now()
	return &pair{a: newEnd(t, cfg, epoch), b: newEnd(t, cfg, epoch), loss: loss, rng: rand.New(rand.NewPCG(seed, 17))}
}

// pass moves the frames each side sent to the other, losing some.
func (p *pair) pass(now time.Time) {
	fa, fb := p.a.take(), p.b.take()
	p.b.input(now, p.filter(p.a, fa))
	p.a.input(now, p.filter(p.b, fb))
}

func (p *pair) filter(from *end, fs []frame) []frame {
	out := fs[:0]
	for _, f := range fs {
		lost := p.rng.Float64() < p.loss
		if p.drop != nil {
			lost = p.drop(from, f)
		}
		if lost {
			from.dropped++
			continue
		}
		out = append(out, f)
	}
	return out
}

// run advances the bubble's clock a millisecond at a time (the pipe's
// one-way delay), running both sides' timers, until done or limit.
func (p *pair) run(t testing.TB, limit time.Duration, done func() bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for !done() {
		require.True(t, time.Now().Before(end), "not done within %v", limit)
		time.Sleep(time.Millisecond)
		now := time.Now()
		p.a.ls.Timers(now, NoLimit)
		p.b.ls.Timers(now, NoLimit)
		p.pass(now)
	}
}

// msg is a message whose bytes say which it is.
func msg(lane, i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(lane*31 + i + j)
	}
	b[0] = byte(i)
	return b
}
