package cc

import (
	"testing"
	"time"
)

// ackLoop sends one packet and acknowledges the one sent rtt/step packets
// earlier, a steady-state flow seen by the controller alone.
type ackLoop struct {
	c        Controller
	p        *Pacer
	ring     []PacketState
	now      time.Time
	n        int
	inflight int
	acked    [1]PacketState
}

func newAckLoop(c Controller) *ackLoop {
	return &ackLoop{c: c, p: NewPacer(1200), ring: make([]PacketState, 40), now: t0}
}

func (l *ackLoop) step() {
	l.now = l.now.Add(time.Millisecond)
	slot := l.n % len(l.ring)
	if l.n >= len(l.ring) {
		l.acked[0] = l.ring[slot]
		l.inflight -= 1200
		l.c.OnAck(l.now, AckEvent{Acked: l.acked[:], Inflight: l.inflight})
		l.p.SetRate(l.now, l.c.PacingRate())
	}
	_ = l.c.CanSend(l.inflight)
	_ = l.p.TimeUntilSend(l.now, 1200)
	l.ring[slot] = l.c.OnPacketSent(l.now, 1200, l.inflight)
	l.p.OnSent(l.now, 1200)
	l.inflight += 1200
	l.n++
}

// BenchmarkControllerPacket is the per-packet cost of each controller and
// the pacer (one send and one ACK); None is the baseline.
func BenchmarkControllerPacket(b *testing.B) {
	for _, a := range []Algorithm{None, Cubic, BBR} {
		b.Run(string(a), func(b *testing.B) {
			c, err := New(a, Config{MSS: 1200})
			if err != nil {
				b.Fatal(err)
			}
			l := newAckLoop(c)
			b.ReportAllocs()
			for b.Loop() {
				l.step()
			}
		})
	}
}

// TestControllerAllocs: the per-packet path allocates nothing.
func TestControllerAllocs(t *testing.T) {
	for _, a := range []Algorithm{None, Cubic, BBR} {
		c, err := New(a, Config{MSS: 1200})
		if err != nil {
			t.Fatal(err)
		}
		l := newAckLoop(c)
		for range 1000 {
			l.step()
		}
		if n := testing.AllocsPerRun(1000, l.step); n != 0 {
			t.Errorf("%s: %v allocs per packet", a, n)
		}
	}
}
