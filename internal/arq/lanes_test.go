package arq

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"
)

// TestPairLossy: two ends over a pipe losing 20% of frames each way, with
// three lanes, deliver every message of every lane exactly once and in
// order, for several seeds.
func TestPairLossy(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		synctest.Test(t, func(t *testing.T) {
			p := newPair(t, testConfig(3), 0.2, seed)
			p.a.timing = Timing{SRTT: 2 * time.Millisecond, RTTVar: time.Millisecond, PTO: 6 * time.Millisecond}
			const n = 60
			var want [3][][]byte
			for i := range n {
				now := time.Now()
				for lane := range 3 {
					m := msg(lane, i, 1+(i*97+lane*300)%2500) // up to 3 segments
					want[lane] = append(want[lane], m)
					p.a.write(now, lane, m, time.Time{})
				}
				if i%4 == 0 {
					time.Sleep(time.Millisecond)
					p.pass(time.Now())
				}
			}
			p.run(t, 30*time.Second, func() bool { return p.a.ls.Idle() })
			for lane := range 3 {
				require.Equal(t, want[lane], p.b.got[lane], "seed %d lane %d", seed, lane)
			}
			require.Positive(t, p.a.dropped, "the pipe lost frames")
			st := p.a.ls.Stats(0)
			require.EqualValues(t, n, st.MessagesSent)
			require.Positive(t, st.Retransmissions)
			require.EqualValues(t, n, p.b.ls.Stats(0).MessagesReceived)
			require.Zero(t, st.QueuedBytes+p.a.ls.View(0).Inflight)
			require.NotEmpty(t, p.a.lat, "delivery latencies were reported")
		})
	}
}

// TestAdmitBudget: a byte budget of N admits at most N bytes of payload
// into KCP; what does not fit waits in the backlog, in order, for the
// next budget. The direct path of Enqueue honours the budget too.
func TestAdmitBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnd(t, testConfig(1), time.Now())
		now := time.Now()
		require.False(t, e.ls.Enqueue(now, 0, msg(0, 0, 300), time.Time{}, 299), "a budget below the message keeps it out of KCP")
		for i := 1; i < 10; i++ {
			e.ls.Enqueue(now, 0, msg(0, i, 300), time.Time{}, NoLimit)
		}
		require.Equal(t, 10, e.ls.View(0).Backlog)
		for _, budget := range []int{0, 299, 1000, 300, 0, NoLimit} {
			before := e.ls.View(0).Backlog
			sent := e.ls.Stats(0).MessagesSent
			bytes, admitted := e.ls.Admit(now, budget)
			n := before - e.ls.View(0).Backlog
			require.EqualValues(t, n, e.ls.Stats(0).MessagesSent-sent)
			require.Equal(t, 300*n, bytes)
			require.Equal(t, n > 0, admitted)
			if budget >= 0 {
				require.LessOrEqual(t, bytes, budget, "budget %d", budget)
				require.Equal(t, min(before, budget/300), n, "budget %d admits every message that fits", budget)
			} else {
				require.Zero(t, e.ls.View(0).Backlog, "no byte budget: the send window only")
			}
		}
		require.Equal(t, 10, e.ls.View(0).Inflight)
	})
}

// TestAdmitWindowAndPriority: with the send window full, messages wait;
// as it opens, the higher-priority lane is admitted first.
func TestAdmitWindowAndPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(2)
		cfg.Priorities = []int{0, 5}
		cfg.SendWindow = 4
		e := newEnd(t, cfg, time.Now())
		now := time.Now()
		for i := range 6 {
			e.ls.Enqueue(now, 0, msg(0, i, 10), time.Time{}, NoLimit)
		}
		for i := range 6 {
			e.ls.Enqueue(now, 1, msg(1, i, 10), time.Time{}, NoLimit)
		}
		require.Equal(t, 4, e.ls.View(0).Inflight, "the first four went straight in")
		require.Equal(t, 6, e.ls.View(1).Backlog)
		_, admitted := e.ls.Admit(now, NoLimit)
		require.False(t, admitted, "the window is full")
		// The peer acknowledges lane 0's four segments.
		peer := newEnd(t, cfg, time.Now())
		e.ls.Flush(now)
		peer.input(now, e.take())
		e.input(now, peer.take())
		e.ls.Admit(now, NoLimit) // as the root's pump does after input
		require.Zero(t, e.ls.View(0).Inflight)
		require.Equal(t, 4, e.ls.View(1).Inflight, "the freed window went to lane 1, the higher priority")
		require.Equal(t, 2, e.ls.View(0).Backlog)
	})
}

// TestFlushReports: Flush reports the bytes it sent and which were
// retransmissions; acknowledgements report the payload confirmed and an
// RTT sample.
func TestFlushReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		now := time.Now()
		p.a.ls.Enqueue(now, 0, msg(0, 0, 100), time.Time{}, NoLimit)
		s := p.a.ls.Flush(now)
		require.True(t, s.Data)
		require.Equal(t, 24+1+100, s.Bytes, "one segment: header, kind byte, payload")
		require.Zero(t, s.Retrans)
		require.Len(t, p.a.take(), 1) // lost

		// KCP's retransmission timeout resends it.
		p.a.sent = nil
		p.run(t, time.Second, func() bool { return len(p.a.sent) > 0 })
		var re Sent
		for _, s := range p.a.sent {
			re.Retrans += s.Retrans
			re.RetransBytes += s.RetransBytes
		}
		require.Equal(t, 1, re.Retrans)
		require.Equal(t, 125, re.RetransBytes)
		p.run(t, time.Second, func() bool { return p.a.ls.Idle() })
		var bytes int
		var rtt time.Duration
		for _, a := range p.a.acks {
			bytes += a.Bytes
			rtt = max(rtt, a.RTT)
		}
		require.Equal(t, 100, bytes, "the payload confirmed")
		require.Zero(t, rtt, "a retransmitted tail gives no RTT sample")

		// A message sent once gives one.
		p.a.acks = nil
		p.a.write(time.Now(), 0, msg(0, 1, 10), time.Time{})
		p.run(t, time.Second, func() bool { return p.a.ls.Idle() })
		var samples []time.Duration
		for _, a := range p.a.acks {
			if a.RTT > 0 {
				samples = append(samples, a.RTT)
			}
		}
		require.Len(t, samples, 1)
		require.Equal(t, 2*time.Millisecond, samples[0], "one millisecond each way")
	})
}

// delayedAcks is an AckPolicy that holds ACKs for a fixed delay.
type delayedAcks struct {
	delay time.Duration
	at    time.Time
	sent  int
}

func (d *delayedAcks) OnData(now time.Time, _, _ int, _, _ bool) {
	if d.at.IsZero() {
		d.at = now.Add(d.delay)
	}
}
func (d *delayedAcks) AckNow(now time.Time) bool { return !d.at.IsZero() && !now.Before(d.at) }
func (d *delayedAcks) Deadline() time.Time       { return d.at }
func (d *delayedAcks) OnAckSent(time.Time)       { d.at = time.Time{}; d.sent++ }

// TestAckPolicy: ACK generation follows the policy. Immediate (the
// default) acknowledges in the same event; a delaying policy holds the
// ACK until its deadline, which Deadline reports and Timers honours (here
// before KCP's interval tick, which flushes owed ACKs too).
func TestAckPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(1)
		a := newEnd(t, cfg, time.Now())
		b := newEndTuned(t, cfg, time.Now(), func(k *kcp.KCP) {
			tune(k)
			k.NoDelay(1, 100, 2, 1) // a 100 ms interval tick
		})
		now := time.Now()
		b.ls.MakeKCP(0).Update() // KCP's first Update: its tick starts now
		a.write(now, 0, msg(0, 0, 10), time.Time{})
		b.ls.Input(now, 0, a.take()[0].b, 0)
		b.ls.FlushAcks(now)
		require.Len(t, b.take(), 1, "Immediate: the ACK goes at once")

		pol := &delayedAcks{delay: 5 * time.Millisecond}
		b.ls.SetAckPolicy(pol)
		time.Sleep(time.Millisecond)
		now = time.Now()
		a.write(now, 0, msg(0, 1, 10), time.Time{})
		b.ls.Input(now, 0, a.take()[0].b, 0)
		b.ls.FlushAcks(now)
		require.Empty(t, b.out, "held by the policy")
		require.Equal(t, now.Add(5*time.Millisecond), b.ls.Deadline(now), "the policy's deadline comes first")
		time.Sleep(4 * time.Millisecond)
		b.ls.Timers(time.Now(), NoLimit)
		require.Empty(t, b.out, "not yet")
		time.Sleep(time.Millisecond)
		b.ls.Timers(time.Now(), NoLimit)
		require.Len(t, b.take(), 1, "at the deadline")
		require.Equal(t, 1, pol.sent)
		d := b.ls.Deadline(time.Now())
		require.True(t, d.IsZero() || d.After(time.Now().Add(50*time.Millisecond)), "nothing owed, nothing due soon: %v", time.Until(d))
	})
}

// TestGap: Gap reports a lane that received a segment beyond one it is
// missing, until the missing one arrives.
func TestGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(2)
		a, b := newEnd(t, cfg, time.Now()), newEnd(t, cfg, time.Now())
		now := time.Now()
		require.False(t, b.ls.Gap(), "nothing received")
		a.write(now, 1, msg(1, 0, 10), time.Time{})
		b.input(now, a.take())
		require.False(t, b.ls.Gap(), "in order")
		a.write(now, 1, msg(1, 1, 10), time.Time{})
		lost := a.take()
		a.write(now, 1, msg(1, 2, 10), time.Time{})
		b.input(now, a.take())
		require.True(t, b.ls.Gap(), "segment 1 of lane 1 is missing")
		b.input(now, lost)
		require.False(t, b.ls.Gap(), "filled")
		require.Len(t, b.got[1], 3)
	})
}
