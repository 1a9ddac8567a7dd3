package arq

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/cc"
)

// countingCC is a cc.NoneController that counts what the lanes report.
type countingCC struct {
	*cc.NoneController
	sent, acked, lost     int // bytes
	sentN, ackedN, lostN  int // segments
	lastInflight, maxInfl int
}

func (c *countingCC) OnPacketSent(now time.Time, bytes, inflight int) cc.PacketState {
	c.sent += bytes
	c.sentN++
	c.maxInfl = max(c.maxInfl, inflight+bytes)
	return c.NoneController.OnPacketSent(now, bytes, inflight)
}

func (c *countingCC) OnAck(now time.Time, ev cc.AckEvent) {
	for _, p := range ev.Acked {
		c.acked += p.Bytes
		c.ackedN++
	}
	c.lastInflight = ev.Inflight
	c.NoneController.OnAck(now, ev)
}

func (c *countingCC) OnLoss(now time.Time, lost []cc.PacketState, inflight int) {
	for _, p := range lost {
		c.lost += p.Bytes
		c.lostN++
	}
	c.lastInflight = inflight
	c.NoneController.OnLoss(now, lost, inflight)
}

// TestCongestionAccounting: over a pipe losing 20 % of the frames each
// way, every data segment the lanes send is reported once per
// transmission, and every transmission ends acknowledged or declared lost
// (a retransmission declares the previous copy lost): bytes sent = bytes
// acknowledged + bytes lost, the losses are exactly KCP's
// retransmissions, and once everything is acknowledged nothing is in
// flight. The per-packet overhead is added once per frame.
func TestCongestionAccounting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(2)
		p := newPair(t, cfg, 0.2, 5)
		ctr := &countingCC{NoneController: cc.NewNone(cc.Config{})}
		const overhead = 33
		p.a.ls.SetController(ctr, overhead)
		now := time.Now()
		const n = 200
		for i := range n {
			p.a.write(now, i%2, msg(i%2, i, 100+i*37%3000), time.Time{})
		}
		p.a.ls.Flush(now)
		p.run(t, time.Minute, func() bool { return len(p.b.got[0])+len(p.b.got[1]) == n && p.a.ls.Idle() })
		retrans, frames := 0, 0
		for _, s := range p.a.sent {
			retrans += s.Retrans
			if s.Data {
				frames++
			}
		}
		lost, sent := p.a.ls.Lost()
		t.Logf("%d data segments in %d frames, %d retransmitted; bytes sent %d, acked %d, lost %d; most in flight %d",
			ctr.sentN, frames, retrans, ctr.sent, ctr.acked, ctr.lost, ctr.maxInfl)
		require.Positive(t, retrans, "20 %% loss makes KCP retransmit")
		require.Equal(t, retrans, ctr.lostN, "each retransmission declares the copy before it lost")
		require.EqualValues(t, ctr.lostN, lost)
		require.EqualValues(t, ctr.sentN, sent)
		require.Equal(t, ctr.sent, ctr.acked+ctr.lost, "every transmission ends acknowledged or lost")
		require.Equal(t, ctr.sentN, ctr.ackedN+ctr.lostN)
		require.Zero(t, p.a.ls.BytesInFlight(), "nothing in flight once everything is acknowledged")
		require.Zero(t, ctr.lastInflight)
	})
}
