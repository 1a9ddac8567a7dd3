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

// countSpurious is a cc.NoneController that counts the losses undone.
type countSpurious struct {
	*cc.NoneController
	spurious int
}

func (c *countSpurious) OnAck(now time.Time, ev cc.AckEvent) {
	c.spurious += ev.Spurious
	c.NoneController.OnAck(now, ev)
}

// TestReAckLostAcks: data one way, two segments a millisecond, losing 5 %
// of its frames, ACKs the other way losing 25 %. Without ACK repetition a lost ACK packet, while a hole
// holds una below the segments it acknowledged, makes the sender count the
// later ACKs past them and send them again although they arrived. With
// it, each out-of-order ACK goes out twice and such retransmissions fall
// by more than half; the rest are repaired losses. The undone losses the
// controller is told of are spurious retransmissions the sender found.
func TestReAckLostAcks(t *testing.T) {
	run := func(t *testing.T, repeat bool) (retrans, lostData, sent int, reacks uint64, spurious int) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig(1)
			p := newPair(t, cfg, 0, 11)
			p.a.ls.noReAck = !repeat
			p.b.ls.noReAck = !repeat
			ctr := &countSpurious{NoneController: cc.NewNone(cc.Config{})}
			p.a.ls.SetController(ctr, 0)
			p.drop = func(from *end, f frame) bool {
				if from == p.a {
					lost := p.rng.Float64() < 0.05
					if lost && f.s.Data {
						lostData += countPush(f.b)
					}
					return lost
				}
				return p.rng.Float64() < 0.25
			}
			s0 := kcp.DefaultSnmp.Copy()
			defer func() {
				s1 := kcp.DefaultSnmp.Copy()
				t.Logf("kcp: fast %d early %d rto %d", s1.FastRetransSegs-s0.FastRetransSegs, s1.EarlyRetransSegs-s0.EarlyRetransSegs, s1.LostSegs-s0.LostSegs)
			}()
			// Two messages a millisecond, as a paced sender sends: the
			// receiver acknowledges each millisecond's in one packet.
			const n = 1200
			i := 0
			p.run(t, time.Minute, func() bool {
				for range 2 {
					if i < n {
						p.a.write(time.Now(), 0, msg(0, i, 1000), time.Time{})
						i++
					}
				}
				return len(p.b.got[0]) == n && p.a.ls.Idle()
			})
			for _, s := range p.a.sent {
				retrans += s.Retrans
				if s.Data {
					sent++
				}
			}
			reacks, spurious = p.b.ls.ReAcks(), ctr.spurious
		})
		return
	}
	r0, l0, s0, _, sp0 := run(t, false)
	r1, l1, s1, re1, sp1 := run(t, true)
	t.Logf("without repetition: %d retransmissions for %d lost data segments (%d frames), %d found spurious", r0, l0, s0, sp0)
	t.Logf("with repetition: %d retransmissions for %d lost data segments (%d frames), %d found spurious; %d ACKs repeated", r1, l1, s1, sp1, re1)
	require.Positive(t, re1, "ACKs were repeated")
	require.Greater(t, r0-l0, 0, "without repetition lost ACKs cause retransmissions of segments that arrived")
	require.Less(t, r1-l1, (r0-l0)/2, "repetition removes most of them")
}

// TestSpuriousTimeout: a 20 ms base RTT whose data direction is a
// bottleneck serving one frame a millisecond, and the sender sends two a
// millisecond for 60 ms: the queue grows to 60 ms, past KCP's
// retransmission timeout (about 30 ms here), so KCP resends segments
// still queued. Nothing is lost: every retransmission is spurious, and the ACK of each original (its
// timestamp echoed, or una arriving sooner after the resend than a round
// trip) shows it. The controller is told (AckEvent.Spurious); with
// Config.SpuriousRTOFloor the lane raises its KCP's timeout floor to 5/4 of the RTT the late copies took,
// so the same burst again causes far fewer; the floor goes back to KCP's
// own after spuriousRTOHold. With a 2 ms base RTT the floor rises at
// most to spuriousMinRTTs minimum RTTs.
func TestSpuriousTimeout(t *testing.T) {
	for _, delay := range []time.Duration{10 * time.Millisecond, time.Millisecond} {
		t.Run(fmt.Sprintf("delay %v", delay), func(t *testing.T) { testSpuriousTimeout(t, delay) })
	}
}

// testSpuriousTimeout is TestSpuriousTimeout with a one-way delay.
func testSpuriousTimeout(t *testing.T, delay time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(1)
		cfg.SpuriousRTOFloor = true
		p := newPair(t, cfg, 0, 3)
		ctr := &countSpurious{NoneController: cc.NewNone(cc.Config{})}
		p.a.ls.SetController(ctr, 0)
		type queued struct {
			at time.Time
			f  frame
		}
		var q, back []queued
		var last time.Time
		due := func(q *[]queued, now time.Time) []frame {
			var fs []frame
			for len(*q) > 0 && !(*q)[0].at.After(now) {
				fs = append(fs, (*q)[0].f)
				*q = (*q)[1:]
			}
			return fs
		}
		// step runs one millisecond: timers, the bottleneck a → b, and
		// the plain delay b → a.
		step := func() {
			time.Sleep(time.Millisecond)
			now := time.Now()
			p.a.ls.Timers(now, NoLimit)
			p.b.ls.Timers(now, NoLimit)
			for _, f := range p.a.take() {
				last = later(last.Add(time.Millisecond), now.Add(delay))
				q = append(q, queued{last, f})
			}
			for _, f := range p.b.take() {
				back = append(back, queued{now.Add(delay), f})
			}
			p.b.input(now, due(&q, now))
			p.a.input(now, due(&back, now))
		}
		burst := func(first int) (retrans int) {
			r0 := p.a.ls.lanes[0].ctr.Retrans.Load()
			for i := range 120 {
				p.a.write(time.Now(), 0, msg(0, first+i, 1000), time.Time{})
				if i%2 == 1 {
					step()
				}
			}
			for len(p.b.got[0]) < first+120 || !p.a.ls.Idle() || len(q) > 0 || len(back) > 0 {
				step()
			}
			return int(p.a.ls.lanes[0].ctr.Retrans.Load() - r0)
		}
		k := p.a.ls.lanes
		r1 := burst(0)
		sp1 := p.a.ls.Spurious()
		floor, _ := p.a.sh.KCP.MinRTO(k[0].arq)
		t.Logf("first burst: %d retransmissions, %d found spurious (controller told of %d); RTO floor now %d ms", r1, sp1, ctr.spurious, floor)
		require.Positive(t, r1, "the queue outgrows KCP's timeout")
		require.GreaterOrEqual(t, float64(sp1), 0.8*float64(r1), "nothing was lost: the retransmissions are found spurious")
		require.EqualValues(t, sp1, ctr.spurious)
		lost, _ := p.a.ls.Lost()
		require.EqualValues(t, uint64(r1)-sp1, lost, "Lost excludes them")
		if delay < 2*time.Millisecond {
			// A copy much later than the path's minimum RTT was not
			// just queued: the floor rises at most to spuriousMinRTTs
			// of them.
			mr := uint32(ctr.Stats().MinRTT / time.Millisecond)
			t.Logf("minimum RTT %d ms", mr)
			require.LessOrEqual(t, floor, max(30, spuriousMinRTTs*mr), "the floor is capped on a short path")
			return
		}
		require.Greater(t, floor, uint32(30), "the timeout floor rose")

		s0 := kcp.DefaultSnmp.Copy()
		r2 := burst(120)
		s1 := kcp.DefaultSnmp.Copy()
		floor2, _ := p.a.sh.KCP.MinRTO(k[0].arq)
		t.Logf("second burst: %d retransmissions (kcp: fast %d early %d rto %d), floor %d", r2, s1.FastRetransSegs-s0.FastRetransSegs, s1.EarlyRetransSegs-s0.EarlyRetransSegs, s1.LostSegs-s0.LostSegs, floor2)
		require.Less(t, r2, r1/2, "the raised floor spares the second burst")

		time.Sleep(spuriousRTOHold)
		p.a.write(time.Now(), 0, msg(0, 240, 1000), time.Time{})
		for len(p.b.got[0]) < 241 || !p.a.ls.Idle() || len(q) > 0 || len(back) > 0 {
			step()
		}
		floor, _ = p.a.sh.KCP.MinRTO(k[0].arq)
		require.EqualValues(t, 30, floor, "KCP's own floor is back after the hold")
	})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// countPush counts the data segments of a frame.
func countPush(b []byte) int {
	n := 0
	for p := b; ; {
		seg, rest, ok := wire.NextSegment(p)
		if !ok {
			return n
		}
		if seg.Cmd() == wire.CmdPush {
			n++
		}
		p = rest
	}
}
