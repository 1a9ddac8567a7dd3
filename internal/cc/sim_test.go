package cc

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

// This file is a small deterministic discrete-event simulation: bulk
// senders with a simple reliable protocol (packet-number ACKs, loss by
// packet and time thresholds, an RTO, retransmission of lost chunks)
// sending through a netsim.Bottleneck, with random loss after the queue and
// an uncongested return path. Time is simulated; nothing sleeps.

var simStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const simMSS = 1200

// sim is the event loop.
type sim struct {
	now time.Time
	q   eventQueue
	seq uint64
}

type simEvent struct {
	at  time.Time
	seq uint64
	fn  func(now time.Time)
}

type eventQueue []simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *sim) at(t time.Time, fn func(time.Time)) {
	s.seq++
	heap.Push(&s.q, simEvent{at: t, seq: s.seq, fn: fn})
}

func (s *sim) run(until time.Time) {
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(simEvent)
		if e.at.After(until) {
			return
		}
		s.now = e.at
		e.fn(e.at)
	}
}

// simLink is the bottleneck direction plus random loss after it and the
// propagation delay of the return path.
type simLink struct {
	b        *netsim.Bottleneck
	loss     float64
	rng      *rand.Rand
	ackDelay time.Duration
	waits    []waitSample
}

type waitSample struct {
	at   time.Time
	wait time.Duration
}

type sentPkt struct {
	state PacketState
	chunk uint64
}

// simFlow is one bulk sender and its receiver.
type simFlow struct {
	s      *sim
	link   *simLink
	cc     Controller
	pacer  *Pacer
	window int // flow-control window in packets (KCP's snd_wnd), 0 = none
	start  time.Time

	nextPN, nextChunk uint64
	sent              map[uint64]*sentPkt
	outstanding       []uint64 // pns in send order; entries already acked or lost are skipped
	inflight          int
	largestAcked      uint64
	retx              []uint64
	wakeAt            time.Time
	rtoAt             time.Time

	// Receiver.
	ackPolicy  *AckPolicy
	pendingAck []uint64
	got        []bool
	goodput    []int64 // unique bytes delivered per 100 ms bucket

	// Counters.
	sentPkts, queueDrops, acksSent, dataRecv int
	trace                                    func(now time.Time, f *simFlow)
}

func newSimFlow(s *sim, l *simLink, c Controller, start time.Time) *simFlow {
	f := &simFlow{s: s, link: l, cc: c, pacer: NewPacer(simMSS), start: start, sent: map[uint64]*sentPkt{}}
	s.at(start, f.trySend)
	return f
}

func (f *simFlow) trySend(now time.Time) {
	for {
		if !f.cc.CanSend(f.inflight) || f.window > 0 && len(f.sent) >= f.window {
			return // an ACK or the RTO wakes us
		}
		f.pacer.SetRate(now, f.cc.PacingRate())
		if w := f.pacer.TimeUntilSend(now, simMSS); w > 0 {
			at := now.Add(w)
			if f.wakeAt.IsZero() || at.Before(f.wakeAt) || !f.wakeAt.After(now) {
				f.wakeAt = at
				f.s.at(at, f.trySend)
			}
			return
		}
		f.sendOne(now)
	}
}

func (f *simFlow) sendOne(now time.Time) {
	var chunk uint64
	if len(f.retx) > 0 {
		chunk, f.retx = f.retx[0], f.retx[1:]
	} else {
		chunk = f.nextChunk
		f.nextChunk++
	}
	pn := f.nextPN
	f.nextPN++
	st := f.cc.OnPacketSent(now, simMSS, f.inflight)
	f.inflight += simMSS
	f.pacer.OnSent(now, simMSS)
	f.sent[pn] = &sentPkt{state: st, chunk: chunk}
	f.outstanding = append(f.outstanding, pn)
	f.sentPkts++
	f.armRTO(now)

	at, wait, ok := f.link.b.Enqueue(now, simMSS)
	if !ok {
		f.queueDrops++
		return
	}
	f.link.waits = append(f.link.waits, waitSample{now, wait})
	if f.link.loss > 0 && f.link.rng.Float64() < f.link.loss {
		return
	}
	f.s.at(at, func(now time.Time) { f.receive(now, pn, chunk) })
}

// receive is the receiver side: count unique data, then acknowledge per
// the ACK policy (every packet without one).
func (f *simFlow) receive(now time.Time, pn, chunk uint64) {
	f.dataRecv++
	for uint64(len(f.got)) <= chunk {
		f.got = append(f.got, false)
	}
	if !f.got[chunk] {
		f.got[chunk] = true
		b := int(now.Sub(simStart) / (100 * time.Millisecond))
		for len(f.goodput) <= b {
			f.goodput = append(f.goodput, 0)
		}
		f.goodput[b] += simMSS
	}
	f.pendingAck = append(f.pendingAck, pn)
	if f.ackPolicy == nil || f.ackPolicy.OnPacket(now, pn, simMSS, false) {
		f.sendAck(now)
		return
	}
	deadline := f.ackPolicy.Deadline()
	f.s.at(deadline, func(now time.Time) {
		if f.ackPolicy.Deadline().Equal(deadline) && len(f.pendingAck) > 0 {
			f.sendAck(now)
		}
	})
}

func (f *simFlow) sendAck(now time.Time) {
	pns := f.pendingAck
	f.pendingAck = nil
	f.acksSent++
	if f.ackPolicy != nil {
		f.ackPolicy.OnAckSent()
		f.ackPolicy.SetRTT(f.cc.Stats().SmoothedRTT) // the receiver's own estimate in a real session
	}
	f.s.at(now.Add(f.link.ackDelay), func(now time.Time) { f.onAck(now, pns) })
}

func (f *simFlow) onAck(now time.Time, pns []uint64) {
	var ev AckEvent
	for _, pn := range pns {
		p, ok := f.sent[pn]
		if !ok {
			continue // already declared lost
		}
		delete(f.sent, pn)
		f.inflight -= p.state.Bytes
		ev.Acked = append(ev.Acked, p.state)
		f.largestAcked = max(f.largestAcked, pn)
	}
	ev.Lost = f.detectLoss(now)
	ev.Inflight = f.inflight
	f.cc.OnAck(now, ev)
	if f.trace != nil {
		f.trace(now, f)
	}
	f.armRTO(now)
	f.trySend(now)
}

// detectLoss declares lost the packets 3 or more below the largest acked,
// or sent more than 9/8 RTT before the newest acked one (RFC 9002's
// thresholds).
func (f *simFlow) detectLoss(now time.Time) []PacketState {
	rtt := f.cc.Stats().SmoothedRTT
	var lost []PacketState
	i := 0
	for ; i < len(f.outstanding); i++ {
		pn := f.outstanding[i]
		p, ok := f.sent[pn]
		if !ok {
			continue
		}
		if pn >= f.largestAcked {
			break
		}
		if f.largestAcked-pn < 3 && now.Sub(p.state.SentTime) < rtt*9/8 {
			break
		}
		lost = append(lost, p.state)
		f.lose(pn, p)
	}
	f.outstanding = f.outstanding[i:]
	return lost
}

func (f *simFlow) lose(pn uint64, p *sentPkt) {
	delete(f.sent, pn)
	f.inflight -= p.state.Bytes
	f.retx = append(f.retx, p.chunk)
}

func (f *simFlow) rto() time.Duration {
	return max(3*f.cc.Stats().SmoothedRTT, 200*time.Millisecond)
}

func (f *simFlow) armRTO(now time.Time) {
	if len(f.sent) == 0 {
		return
	}
	at := now.Add(f.rto())
	if !f.rtoAt.IsZero() && f.rtoAt.After(now) {
		return // one pending check suffices; it re-arms itself
	}
	f.rtoAt = at
	f.s.at(at, f.onRTO)
}

func (f *simFlow) onRTO(now time.Time) {
	f.rtoAt = time.Time{}
	var lost []PacketState
	keep := f.outstanding[:0]
	for _, pn := range f.outstanding {
		p, ok := f.sent[pn]
		if !ok {
			continue
		}
		if now.Sub(p.state.SentTime) >= f.rto() {
			lost = append(lost, p.state)
			f.lose(pn, p)
			continue
		}
		keep = append(keep, pn)
	}
	f.outstanding = keep
	if len(lost) > 0 {
		f.cc.OnLoss(now, lost, f.inflight)
	}
	f.armRTO(now)
	f.trySend(now)
}

// goodputBetween returns the unique bytes delivered in [from, to) per
// second.
func (f *simFlow) goodputBetween(from, to time.Duration) float64 {
	var sum int64
	for b := int(from / (100 * time.Millisecond)); b < int(to/(100*time.Millisecond)) && b < len(f.goodput); b++ {
		sum += f.goodput[b]
	}
	return float64(sum) / (to - from).Seconds()
}

// waitPercentile returns the p-th percentile of the queueing delay of the
// packets accepted in [from, to).
func (l *simLink) waitPercentile(from, to time.Duration, p float64) time.Duration {
	var w []time.Duration
	for _, s := range l.waits {
		off := s.at.Sub(simStart)
		if off >= from && off < to {
			w = append(w, s.wait)
		}
	}
	if len(w) == 0 {
		return 0
	}
	slices.Sort(w)
	return w[min(len(w)-1, int(p/100*float64(len(w))))]
}

// simScenario describes one run.
type simScenario struct {
	rate     int64 // bits/s
	schedule []netsim.RateStep
	oneWay   time.Duration // each way; base RTT is twice this
	queue    time.Duration
	loss     float64
	flows    []simFlowSpec
	duration time.Duration
	seed     uint64 // added to each flow's Config.Seed and the loss generator's
}

type simFlowSpec struct {
	alg    Algorithm
	start  time.Duration
	window int
	acks   bool // thin ACKs with an AckPolicy
}

type simResult struct {
	link  *simLink
	flows []*simFlow
}

func runSim(tb testing.TB, sc simScenario) simResult {
	tb.Helper()
	return runSimTrace(tb, sc, nil)
}

// runSimTrace is runSim with trace called after every ACK.
func runSimTrace(tb testing.TB, sc simScenario, trace func(now time.Time, f *simFlow)) simResult {
	tb.Helper()
	s := &sim{now: simStart}
	link := &simLink{
		b: netsim.NewBottleneck(netsim.BottleneckConfig{
			Rate: sc.rate, QueueDelay: sc.queue, Delay: sc.oneWay, Schedule: sc.schedule,
		}, simStart),
		loss:     sc.loss,
		rng:      rand.New(rand.NewPCG(1+sc.seed, 2)),
		ackDelay: sc.oneWay,
	}
	var r simResult
	r.link = link
	for i, spec := range sc.flows {
		c, err := New(spec.alg, Config{MSS: simMSS, Seed: sc.seed + uint64(i+1)})
		if err != nil {
			tb.Fatal(err)
		}
		f := newSimFlow(s, link, c, simStart.Add(spec.start))
		f.window = spec.window
		f.trace = trace
		if spec.acks {
			f.ackPolicy = &AckPolicy{FullSize: simMSS}
		}
		r.flows = append(r.flows, f)
	}
	s.run(simStart.Add(sc.duration))
	return r
}

func (r simResult) String() string {
	s := ""
	for i, f := range r.flows {
		st := f.cc.Stats()
		s += fmt.Sprintf("flow %d %s: sent %d, queue drops %d (%.2f%%), acks/data %.2f, state %s, bw %.2f Mbit/s, minRTT %v, srtt %v\n",
			i, st.Algorithm, f.sentPkts, f.queueDrops, 100*float64(f.queueDrops)/float64(max(f.sentPkts, 1)),
			float64(f.acksSent)/float64(max(f.dataRecv, 1)), st.State, st.Bandwidth.BitsPerSecond()/1e6, st.MinRTT, st.SmoothedRTT)
	}
	return s
}
