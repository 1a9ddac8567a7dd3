package arq

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/cc"
	"github.com/uxp-go/uxp/internal/wire"
)

// queuePipe is TestSpuriousTimeout's path: frames a → b cross a
// bottleneck that serves one frame a millisecond, then a one-way delay;
// frames b → a only the delay. drop, when set, loses a → b frames before
// the queue. Run inside a synctest bubble.
type queuePipe struct {
	p         *pair
	delay     time.Duration
	q, back   []queuedFrame
	last      time.Time
	drop      func(f frame) bool
	sentAt    map[uint32]time.Time // first send of each data sn a sent
	deliverAt map[uint32]time.Time // first arrival at b of each data sn
}

type queuedFrame struct {
	at time.Time
	f  frame
}

func newQueuePipe(t *testing.T, cfg Config, delay time.Duration) *queuePipe {
	t.Helper()
	qp := &queuePipe{p: newPair(t, cfg, 0, 3), delay: delay, sentAt: map[uint32]time.Time{}, deliverAt: map[uint32]time.Time{}}
	qp.p.a.ls.SetController(cc.NewNone(cc.Config{}), 0)
	return qp
}

func dueFrames(q *[]queuedFrame, now time.Time) []frame {
	var fs []frame
	for len(*q) > 0 && !(*q)[0].at.After(now) {
		fs = append(fs, (*q)[0].f)
		*q = (*q)[1:]
	}
	return fs
}

// dataSNs calls fn with the sn of each data segment of f.
func dataSNs(f frame, fn func(sn uint32)) {
	for p := f.b; ; {
		seg, rest, ok := wire.NextSegment(p)
		if !ok {
			return
		}
		if seg.Cmd() == wire.CmdPush {
			fn(seg.Sn())
		}
		p = rest
	}
}

// holdTick is the pipe's time step: a quarter of the queue's service time,
// so that the path's minimum RTT (about 2 ms) is short enough for the hold
// to act (8 of them under KCP's 30 ms floor).
const holdTick = 250 * time.Microsecond

// step runs one holdTick: timers, the bottleneck a → b, the delay b → a.
func (qp *queuePipe) step() {
	time.Sleep(holdTick)
	now := time.Now()
	p := qp.p
	p.a.ls.Timers(now, NoLimit)
	p.b.ls.Timers(now, NoLimit)
	for _, f := range p.a.take() {
		dataSNs(f, func(sn uint32) {
			if _, ok := qp.sentAt[sn]; !ok {
				qp.sentAt[sn] = now
			}
		})
		if qp.drop != nil && qp.drop(f) {
			continue
		}
		qp.last = later(qp.last.Add(time.Millisecond), now.Add(qp.delay))
		qp.q = append(qp.q, queuedFrame{qp.last, f})
	}
	for _, f := range p.b.take() {
		qp.back = append(qp.back, queuedFrame{now.Add(qp.delay), f})
	}
	in := dueFrames(&qp.q, now)
	for _, f := range in {
		dataSNs(f, func(sn uint32) {
			if _, ok := qp.deliverAt[sn]; !ok {
				qp.deliverAt[sn] = now
			}
		})
	}
	p.b.input(now, in)
	p.a.input(now, dueFrames(&qp.back, now))
}

// burst writes n messages of 1000 bytes, two a millisecond, and runs
// until b has them all and a has nothing in flight. It returns a's
// retransmissions and timeouts (KCP's) during it.
func (qp *queuePipe) burst(first, n int) (retrans, timeouts uint64) {
	p := qp.p
	r0, k0 := p.a.ls.lanes[0].ctr.Retrans.Load(), kcp.DefaultSnmp.Copy()
	for i := range n {
		p.a.write(time.Now(), 0, msg(0, first+i, 1000), time.Time{})
		if i%2 == 1 {
			for range time.Millisecond / holdTick {
				qp.step()
			}
		}
	}
	for len(p.b.got[0]) < first+n || !p.a.ls.Idle() || len(qp.q) > 0 || len(qp.back) > 0 {
		qp.step()
	}
	return p.a.ls.lanes[0].ctr.Retrans.Load() - r0, kcp.DefaultSnmp.Copy().LostSegs - k0.LostSegs
}

// TestTimeoutHold: TestSpuriousTimeout's burst of 120 segments through a
// queue that outgrows KCP's 30 ms timeout (60 ms at its end), on a path
// with a 0.25 ms delay each way, where the Eifel response cannot raise
// KCP's timeout floor (8 minimum RTTs are under it) and the hold acts. Without the hold KCP resends most of the queue; with
// it, nothing (the ACKs show every segment still queued behind those
// acknowledged). A segment lost before the queue is still repaired: in
// the middle of the burst by fast retransmission, at its tail (nothing
// sent after it, no tail-loss probes here) by its timeout, held no longer
// than the round trip the last ACK showed plus a quarter and holdSlack.
func TestTimeoutHold(t *testing.T) {
	const (
		delay = 250 * time.Microsecond
		n     = 120
	)
	t.Run("queued, hold off", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig(1)
			qp := newQueuePipe(t, cfg, delay)
			r, _ := qp.burst(0, n)
			t.Logf("%d retransmissions", r)
			require.Greater(t, r, uint64(n/4), "without the hold the queue outgrows KCP's timeout")
		})
	})
	t.Run("queued", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig(1)
			cfg.TimeoutHold = true
			qp := newQueuePipe(t, cfg, delay)
			r, _ := qp.burst(0, n)
			t.Logf("%d retransmissions, %d timeouts held, min RTT %v", r, qp.p.a.ls.HeldTimeouts(), qp.p.a.ls.cc.Stats().MinRTT)
			require.Zero(t, r, "nothing is resent while the ACKs show it queued")
			require.Positive(t, qp.p.a.ls.HeldTimeouts())
		})
	})
	t.Run("queued, controller's minimum expired", func(t *testing.T) {
		// BBR's windowed minimum RTT expires to the queue's delay when
		// ProbeRTT cannot drain the queue (the bench's bottleneck, 10 s
		// into the session): the hold still judges the path by the least
		// minimum seen (pathMinRTT), and holds.
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig(1)
			cfg.TimeoutHold = true
			qp := newQueuePipe(t, cfg, delay)
			ctrl := &expiringMinRTT{Controller: qp.p.a.ls.cc}
			qp.p.a.ls.SetController(ctrl, 0)
			r, _ := qp.burst(0, 4)
			require.Zero(t, r)
			least := ctrl.Stats().MinRTT
			ctrl.min = 20 * time.Millisecond // 8 of them over KCP's floor
			r, _ = qp.burst(4, n)
			t.Logf("%d retransmissions, %d timeouts held, least min RTT %v", r, qp.p.a.ls.HeldTimeouts(), least)
			require.Less(t, least, 2*time.Millisecond)
			require.Zero(t, r, "nothing is resent while the ACKs show it queued")
			require.Positive(t, qp.p.a.ls.HeldTimeouts())
		})
	})
	for _, lost := range []uint32{60, n - 1} {
		t.Run(fmt.Sprintf("lost sn %d", lost), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(1)
				cfg.TimeoutHold = true
				qp := newQueuePipe(t, cfg, delay)
				dropped := false
				qp.drop = func(f frame) (drop bool) {
					dataSNs(f, func(sn uint32) { drop = drop || sn == lost && !dropped })
					dropped = dropped || drop
					return drop
				}
				r, to := qp.burst(0, n)
				took := qp.deliverAt[lost].Sub(qp.sentAt[lost])
				t.Logf("%d retransmissions (%d on timeout), sn %d arrived %v after its first send", r, to, lost, took)
				require.True(t, dropped)
				require.LessOrEqual(t, r, uint64(2), "only the lost segment is resent")
				// The queue is at most n/2 ms long: a lost segment's
				// repair waits at most that round trip, a quarter more,
				// holdSlack, and one more crossing of the queue.
				bound := 2*(time.Duration(n/2)*time.Millisecond+2*delay)*5/4 + holdSlack
				require.Less(t, took, bound, "the lost segment is repaired within the held round trip")
			})
		})
	}
}

// expiringMinRTT is a controller whose minimum RTT reads min once set: a
// windowed minimum expired to the queue's delay.
type expiringMinRTT struct {
	cc.Controller
	min time.Duration
}

func (e *expiringMinRTT) Stats() cc.Stats {
	st := e.Controller.Stats()
	if e.min > 0 {
		st.MinRTT = e.min
	}
	return st
}
