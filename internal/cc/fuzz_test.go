package cc

import (
	"math"
	"testing"
	"time"
)

// FuzzController drives each controller and a pacer with an arbitrary
// sequence of sends, ACKs (of any subset order, with any RTT the peer's ACK
// delay could produce), losses and idle periods. Which packets are
// acknowledged, and when, is peer input: nothing may panic, and the window
// and rates must stay sane. Time only moves forward, as the owner
// guarantees.
func FuzzController(f *testing.F) {
	f.Add([]byte{0, 10, 0, 10, 1, 2, 5, 2, 1, 3, 4, 9, 0, 200})
	f.Add([]byte{0, 255, 0, 255, 0, 255, 2, 0, 4, 255, 1, 3, 7})
	f.Add([]byte{3, 0, 4, 0, 1, 0, 1, 200, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4096 {
			// Longer sequences add nothing but quadratic test cost.
			return
		}
		for _, alg := range []Algorithm{BBR, Cubic, None} {
			c, err := New(alg, Config{MSS: 1000, Seed: uint64(len(ops))})
			if err != nil {
				t.Fatal(err)
			}
			p := NewPacer(1000)
			now := t0
			var out []PacketState
			inflight := 0
			for i := 0; i < len(ops); i += 2 {
				var arg byte
				if i+1 < len(ops) {
					arg = ops[i+1]
				}
				switch ops[i] % 5 {
				case 0: // send
					size := int(arg)*8 + 1
					out = append(out, c.OnPacketSent(now, size, inflight))
					p.OnSent(now, size)
					inflight += size
				case 1: // ACK up to arg%4+1 packets, picked from anywhere
					now = now.Add(time.Duration(arg) * time.Millisecond)
					var ev AckEvent
					for k := 0; k <= int(arg%4) && len(out) > 0; k++ {
						j := int(arg) % len(out)
						ev.Acked = append(ev.Acked, out[j])
						inflight -= out[j].Bytes
						out = append(out[:j], out[j+1:]...)
					}
					ev.RTT = time.Duration(int8(arg)) * time.Millisecond
					ev.Inflight = inflight
					c.OnAck(now, ev)
				case 2: // lose the oldest
					if len(out) > 0 {
						inflight -= out[0].Bytes
						c.OnLoss(now, out[:1:1], inflight)
						out = out[1:]
					}
				case 3:
					c.OnAppLimited(inflight)
				case 4: // idle
					now = now.Add(time.Duration(arg) * 100 * time.Millisecond)
				}
				p.SetRate(now, c.PacingRate())
				if w := p.TimeUntilSend(now, 1000); w < 0 || w > maxWait {
					t.Fatalf("%s: pacer wait %v", alg, w)
				}
				st := c.Stats()
				if r := float64(c.PacingRate()); math.IsNaN(r) || r <= 0 {
					t.Fatalf("%s: pacing rate %v", alg, r)
				}
				if math.IsNaN(float64(st.Bandwidth)) || st.Bandwidth < 0 {
					t.Fatalf("%s: bandwidth %v", alg, st.Bandwidth)
				}
				if alg != None && c.CongestionWindow() < minWindowPackets*1000 {
					t.Fatalf("%s: cwnd %d below the minimum", alg, c.CongestionWindow())
				}
				_ = c.CanSend(inflight)
			}
		}
	})
}
