package arq

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/wire"
)

// TestDeadlineSkip: a message whose deadline passes while its only copy
// is lost lapses: its segments go out as skip markers (SkipMarkerCopies
// times, not counted as retransmissions), its payload is never sent
// again, and the receiver counts it as skipped and delivers the message
// behind it at once.
func TestDeadlineSkip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		p.a.timing = Timing{SRTT: 2 * time.Millisecond, RTTVar: 2 * time.Millisecond}
		now := time.Now()
		payload := bytes.Repeat([]byte("Z"), 2000) // two segments
		p.a.write(now, 0, payload, now.Add(20*time.Millisecond))
		p.a.write(now, 0, []byte("after"), time.Time{})
		lost := true
		p.drop = func(from *end, f frame) bool { return from == p.a && lost }
		p.run(t, time.Second, func() bool { return p.a.ls.Stats(0).Expired == 1 })
		require.LessOrEqual(t, time.Since(now), 20*time.Millisecond-2*time.Millisecond, "lapsed one expiry margin (srtt/2 + rttvar/2) early")
		var skips int
		for _, s := range p.a.sent {
			if s.Skip {
				skips++
				require.Zero(t, s.Retrans)
			}
		}
		require.Equal(t, SkipMarkerCopies, skips)
		lost = false
		p.a.sent = nil
		var resent [][]byte
		p.drop = func(from *end, f frame) bool {
			if from == p.a {
				resent = append(resent, f.b)
			}
			return false
		}
		p.run(t, time.Second, func() bool { return p.a.ls.Idle() })
		for _, f := range resent {
			require.False(t, bytes.Contains(f, payload[:16]), "the lapsed payload went out again")
		}
		require.Equal(t, [][]byte{[]byte("after")}, p.b.got[0])
		require.EqualValues(t, 1, p.b.ls.Stats(0).Skipped)
		require.Zero(t, p.a.ls.Stats(0).QueuedBytes)
	})
}

// TestDeadlineLate: a deadline message that arrives complete after its
// deadline (on the receiver's clock) is skipped, not delivered late.
func TestDeadlineLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		now := time.Now()
		p.a.write(now, 0, []byte("late"), now.Add(time.Millisecond))
		fs := p.a.take()
		time.Sleep(2 * time.Millisecond)
		p.b.input(time.Now(), fs)
		require.Empty(t, p.b.got[0])
		require.EqualValues(t, 1, p.b.ls.Stats(0).Skipped)
	})
}

// TestTailProbe: a lost tail is sent again one PTO later, long before
// KCP's retransmission timeout, and the ACK of the probe gives an exact RTT
// sample.
func TestTailProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		p.a.timing = Timing{PTO: 6 * time.Millisecond}
		now := time.Now()
		p.a.write(now, 0, []byte("tail"), time.Time{})
		require.Len(t, p.a.take(), 1) // lost
		p.run(t, time.Second, func() bool { return len(p.b.got[0]) == 1 })
		require.LessOrEqual(t, time.Since(now), 8*time.Millisecond, "one PTO and the trip")
		probes := 0
		for _, s := range p.a.sent {
			if s.Probe {
				probes++
				require.Equal(t, 1, s.Retrans)
			}
		}
		require.Equal(t, 1, probes)
		p.run(t, time.Second, func() bool { return p.a.ls.Idle() })
		var rtt time.Duration
		for _, a := range p.a.acks {
			rtt = max(rtt, a.RTT)
		}
		// The probe leaves in the step's Timers and crosses at once; the
		// ACK crosses at the next step.
		require.Equal(t, time.Millisecond, rtt, "the probe's round trip, not the original's")
	})
}

// TestTailProbeBounded: without any acknowledgement, a lane sends
// MaxTailProbes probes, at doubling intervals, and then leaves recovery
// to KCP.
func TestTailProbeBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 1, 1) // everything lost
		p.a.timing = Timing{PTO: 5 * time.Millisecond}
		now := time.Now()
		p.a.write(now, 0, []byte("x"), time.Time{})
		var at []time.Duration
		for range 100 {
			time.Sleep(time.Millisecond)
			n := len(p.a.sent)
			p.a.ls.Timers(time.Now(), NoLimit)
			for _, s := range p.a.sent[n:] {
				if s.Probe {
					at = append(at, time.Since(now))
				}
			}
			p.pass(time.Now())
		}
		require.Equal(t, []time.Duration{5 * time.Millisecond, 15 * time.Millisecond}, at)
	})
}

// TestWindowProbe: while the receiver's application takes nothing, its
// window closes and the sender probes it at doubling intervals; once the
// application reads again, the transfer completes.
func TestWindowProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		p.b.blocked = true
		now := time.Now()
		for i := range 3 * testWindow {
			p.a.write(now, 0, msg(0, i, 10), time.Time{})
		}
		p.run(t, 5*time.Second, func() bool {
			n := 0
			for _, s := range p.a.sent {
				if s.WndProbe {
					n++
				}
			}
			return n >= 3
		})
		require.Greater(t, time.Since(now), wndProbeInitial+2*wndProbeInitial, "doubling intervals")
		p.b.blocked = false
		require.NoError(t, p.b.ls.DeliverLane(time.Now(), 0))
		p.run(t, 10*time.Second, func() bool { return p.a.ls.Idle() })
		require.Len(t, p.b.got[0], 3*testWindow)
	})
}

// TestSkipMarkerAcknowledges: skip markers carry the una of what their
// sender received, like every segment: with the ACK for the peer's
// message lost, the markers alone confirm it.
func TestSkipMarkerAcknowledges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		now := time.Now()
		p.b.write(now, 0, []byte("b"), time.Time{})
		p.a.input(now, p.b.take())
		require.Equal(t, [][]byte{[]byte("b")}, p.a.got[0])
		p.a.write(now, 0, []byte("c"), now.Add(time.Millisecond))
		p.a.take() // the ACK for "b" and "c": lost
		require.Equal(t, 1, p.b.ls.View(0).WaitSnd)
		p.a.ls.Expire(now.Add(time.Second))
		markers := p.a.take()
		require.Len(t, markers, SkipMarkerCopies)
		p.b.input(now, markers)
		require.Zero(t, p.b.ls.View(0).WaitSnd, "the markers' una confirms b's message")
		require.Zero(t, p.b.ls.View(0).Inflight)
		require.EqualValues(t, 1, p.b.ls.Stats(0).Skipped)
		require.EqualValues(t, 1, p.a.ls.Stats(0).Expired)
	})
}

// TestUnaAhead: a segment whose una acknowledges segments its receiver
// never sent is malformed: the frame stops there (the segments before it
// are taken) and the send buffer is untouched (KCP would have discarded
// every unacknowledged message for it); the real exchange still completes.
func TestUnaAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		now := time.Now()
		p.b.write(now, 0, []byte("b"), time.Time{})
		pending := p.b.take()
		hostile := fuzzSeg(wire.CmdPush, 0, 0, 0, []byte{wire.LaneMsgPlain, 'x'})
		hostile = append(hostile, fuzzSeg(wire.CmdAck, 0, 0, 5, nil)...) // una 5: b sent sn 0 only
		p.b.input(now, []frame{{b: hostile}})
		require.Equal(t, 1, p.b.events[EvMalformed])
		require.Equal(t, [][]byte{[]byte("x")}, p.b.got[0], "the segment before it is taken")
		require.Equal(t, 1, p.b.ls.View(0).WaitSnd, "b's message is still unacknowledged")
		require.Equal(t, 1, p.b.ls.View(0).Inflight)
		p.b.take()
		p.a.input(now, pending)
		p.run(t, time.Second, func() bool { return p.b.ls.Idle() })
		require.Equal(t, [][]byte{[]byte("b")}, p.a.got[0])
	})
}

// TestKCPOnFirstUse: a lane's KCP is made when the lane first sends or
// receives; an unused lane holds none.
func TestKCPOnFirstUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(2), 0, 1)
		require.Nil(t, p.a.ls.View(0).KCP)
		p.a.write(time.Now(), 0, []byte("x"), time.Time{})
		p.run(t, time.Second, func() bool { return p.a.ls.Idle() })
		for _, e := range []*end{p.a, p.b} {
			require.NotNil(t, e.ls.View(0).KCP)
			require.Nil(t, e.ls.View(1).KCP, "lane 1 carried nothing")
		}
	})
}

// TestTrim: a lane that grew past its baseline gives the memory back
// after TrimDelay of quiet, and not before.
func TestTrim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		now := time.Now()
		for i := range 100 {
			p.a.write(now, 0, msg(0, i, 1000), time.Time{})
		}
		require.Greater(t, p.a.ls.View(0).InflightCap, minEntries)
		p.run(t, 5*time.Second, func() bool { return p.a.ls.Idle() && p.b.ls.acksOwed() == false })
		quiet := time.Now()
		d := p.a.ls.Deadline(quiet)
		require.True(t, p.a.ls.View(0).TrimArmed)
		require.Equal(t, quiet.Add(TrimDelay), d)
		require.True(t, p.a.sh.KCP.Grown(p.a.ls.View(0).KCP))
		time.Sleep(TrimDelay)
		require.True(t, p.a.ls.Deadline(time.Now()).IsZero(), "trimmed: nothing left to wake for")
		v := p.a.ls.View(0)
		require.False(t, v.TrimArmed)
		require.LessOrEqual(t, v.InflightCap, minEntries)
		require.LessOrEqual(t, v.TrackerSlots, TrackerMinSlots)
		require.False(t, p.a.sh.KCP.Grown(v.KCP))
	})
}

// TestTailProbeNewest: one flush sends several messages, several
// segments each, and only the last datagram is lost: the tail is the
// newest segment (the lane copies only that one, not every fresh segment
// in turn), so the single probe resends exactly it, one PTO later.
func TestTailProbeNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		p.a.timing = Timing{PTO: 6 * time.Millisecond}
		now := time.Now()
		// 1100 bytes do not fit behind the short last segment of the
		// second message: the third message's segment goes alone.
		want := [][]byte{msg(0, 1, 2500), msg(0, 2, 2500), msg(0, 3, 1100)}
		for _, m := range want {
			p.a.ls.Enqueue(now, 0, m, time.Time{}, NoLimit)
		}
		p.a.ls.Admit(now, NoLimit)
		p.a.ls.Flush(now)
		fs := p.a.take()
		require.GreaterOrEqual(t, len(fs), 6, "three segments, three, one")
		lastSeg, rest, ok := wire.NextSegment(fs[len(fs)-1].b)
		require.True(t, ok)
		require.Empty(t, rest, "the last datagram holds one segment")
		require.Equal(t, p.a.ls.View(0).SndSN-1, lastSeg.Sn(), "the last datagram holds the newest segment")
		p.b.input(now, fs[:len(fs)-1]) // the last datagram is lost

		var probed []uint32
		p.drop = func(from *end, f frame) bool {
			if from == p.a && f.s.Probe {
				seg, _, ok := wire.NextSegment(f.b)
				require.True(t, ok)
				probed = append(probed, seg.Sn())
			}
			return false
		}
		p.run(t, time.Second, func() bool { return len(p.b.got[0]) == len(want) })
		require.LessOrEqual(t, time.Since(now), 8*time.Millisecond, "one PTO and the trip")
		require.Equal(t, []uint32{lastSeg.Sn()}, probed, "one probe, of the newest segment")
		require.Equal(t, want, p.b.got[0])
	})
}
