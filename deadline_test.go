package uxp

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestDeadlineFrames streams 60 fps frames with a 100 ms deadline over a
// link with 10% loss each way (20 ms one way). No frame arrives later than
// its deadline, frames arrive in order and once, delivery never pauses for
// longer than the deadline (plus one frame interval per extra frame lost in
// a row, which no protocol can avoid), and the receiver's skipped count
// accounts for every frame that did not arrive.
func TestDeadlineFrames(t *testing.T) {
	tests := []struct {
		name  string
		lanes []LaneConfig
		write func(c *Conn, msg []byte) (int, error)
	}{
		{"WriteWithDeadline", nil, func(c *Conn, msg []byte) (int, error) {
			return c.WriteWithDeadline(msg, 100*time.Millisecond)
		}},
		{"lane default", []LaneConfig{{}, {Deadline: 100 * time.Millisecond}}, func(c *Conn, msg []byte) (int, error) {
			return c.WriteLane(1, msg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const (
					n        = 600 // 10 s
					deadline = 100 * time.Millisecond
					frame    = time.Second / 60
				)
				lane := len(tt.lanes) - 1
				lane = max(lane, 0)
				cfg := &Config{Lanes: tt.lanes, HeartbeatInterval: 500 * time.Millisecond}
				p := newSimPair(t, 67, cfg, cfg, false)
				rec := serverRecorder(p)
				p.net.SetDefault(netsim.Impairment{Loss: 0.1, Delay: 20 * time.Millisecond})
				require.NoError(t, p.cli.Start(context.Background()))
				conn := p.cli.Conn()
				time.Sleep(time.Second) // a few RTT samples
				start := time.Now()
				for i := range n {
					_, err := tt.write(conn, stampedMessage(i, 300+(i*397)%2700))
					require.NoError(t, err)
					time.Sleep(frame)
				}
				// A last message without a deadline makes the receiver
				// account for any abandoned frame before it. (WriteLane
				// would give it the lane's default deadline in the "lane
				// default" case, and then it could be abandoned too: 1 in
				// about 60 runs under -race.) An hour is no deadline here.
				_, err := conn.WriteLaneWithDeadline(lane, stampedMessage(n, 20), time.Hour)
				require.NoError(t, err)
				time.Sleep(2 * time.Second)

				msgs, _ := rec.snapshot()
				got := onLane(msgs, lane)
				require.NotEmpty(t, got)
				require.Equal(t, n, stampIndex(got[len(got)-1].data), "the final reliable message arrives")
				got = got[:len(got)-1]
				prevIdx, prevAt := -1, start
				var worst, worstGap time.Duration
				for _, m := range got {
					idx := stampIndex(m.data)
					require.Greater(t, idx, prevIdx, "frames in order, each once")
					require.Len(t, m.data, 300+(idx*397)%2700)
					lat := stampLatency(m)
					require.LessOrEqual(t, lat, deadline, "frame %d arrived %v after it was written", idx, lat)
					// A skipped frame must not hold the stream past its own
					// deadline: the gap since the previous delivery is at
					// most the deadline, plus one frame interval for every
					// further frame skipped in a row (when frames k and k+1
					// are both lost, k+2 cannot come before k+1's deadline).
					gap := m.at.Sub(prevAt)
					allowed := deadline + time.Duration(max(0, idx-prevIdx-2))*frame
					require.LessOrEqual(t, gap, allowed, "delivery stalled for %v before frame %d (%d skipped before it)", gap, idx, idx-prevIdx-1)
					worst, worstGap = max(worst, lat), max(worstGap, gap)
					prevIdx, prevAt = idx, m.at
				}
				p.srvH.mu.Lock()
				srvConn := p.srvH.conns[0]
				p.srvH.mu.Unlock()
				rs := srvConn.Stats().Lanes[lane]
				cs := conn.Stats().Lanes[lane]
				t.Logf("delivered %d/%d, worst latency %v, longest gap %v; receiver skipped %d, sender expired %d, retransmissions %d",
					len(got), n, worst, worstGap, rs.Skipped, cs.Expired, cs.Retransmissions)
				require.EqualValues(t, n, len(got)+int(rs.Skipped), "every frame is delivered or counted as skipped")
				// 10% loss with retransmission inside the deadline leaves
				// most frames deliverable (589-590 of 600 measured):
				// expiring everything would also satisfy the checks above.
				require.GreaterOrEqual(t, len(got), n*9/10, "most frames make their deadline")
				require.Positive(t, cs.Expired, "10%% loss must make some frame miss its deadline (else the test proves nothing)")
				require.LessOrEqual(t, rs.Skipped, cs.Expired)
				require.Zero(t, cs.QueuedBytes)
			})
		})
	}
}

// TestDeadlineMixedWithReliable interleaves deadline frames with plain
// reliable messages on one lane over a lossy link: abandoning frames must
// never cost a plain message, which all arrive once and in order, and the
// session closes cleanly once everything is acknowledged. A frame that
// waited behind a lost plain message past its deadline is skipped by the
// receiver (it carries its deadline on the receiver's clock), so no frame
// is delivered late either.
func TestDeadlineMixedWithReliable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 400
		cfg := &Config{HeartbeatInterval: 500 * time.Millisecond}
		p := newSimPair(t, 68, cfg, cfg, false)
		rec := serverRecorder(p)
		p.net.SetDefault(netsim.Impairment{Loss: 0.15, Delay: 20 * time.Millisecond})
		require.NoError(t, p.cli.Start(context.Background()))
		conn := p.cli.Conn()
		time.Sleep(time.Second)
		for i := range n {
			if i%3 == 0 {
				_, err := conn.Write(stampedMessage(i, 40))
				require.NoError(t, err)
			} else {
				_, err := conn.WriteWithDeadline(stampedMessage(i, 1500), 60*time.Millisecond)
				require.NoError(t, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		msgs, _ := rec.snapshot()
		var plain []int
		prev := -1
		for _, m := range msgs {
			idx := stampIndex(m.data)
			require.Greater(t, idx, prev, "in order, once")
			prev = idx
			if idx%3 == 0 {
				plain = append(plain, idx)
			} else {
				require.LessOrEqual(t, stampLatency(m), 60*time.Millisecond, "frame %d", idx)
			}
		}
		require.Len(t, plain, (n+2)/3, "every plain message arrives")
		cs := conn.Stats().Lanes[0]
		p.srvH.mu.Lock()
		srvConn := p.srvH.conns[0]
		p.srvH.mu.Unlock()
		skipped := srvConn.Stats().Lanes[0].Skipped
		require.Positive(t, cs.Expired)
		require.EqualValues(t, n, len(msgs)+int(skipped))
		require.Less(t, skipped, uint64(n/3), "most deadline frames still arrive (about 70 of 400 are skipped)")
		require.NoError(t, conn.Close())
		<-conn.Done()
		require.ErrorIs(t, conn.Err(), ErrConnClosed)
		t.Logf("delivered %d/%d, skipped %d, expired %d", len(msgs), n, skipped, cs.Expired)
	})
}
