package uxp

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestTimerWorkBoundedByUsefulWork counts the server's session timer runs
// (ServerStats.TimerEvents) against the old scheduling (the kcpTick hook: KCP's
// 10 ms tick while anything is unacknowledged), in the same test:
//
//   - unacked: the server has one message in flight and the client's
//     packets are black-holed for 3 s, so no ACK comes: the old tick runs
//     the session 100 times a second; the deadline-driven lane only at its
//     probes and its backed-off retransmission timeouts.
//   - loss 5%: an echo at 20 messages a second over a 20 ms path losing
//     5 % each way for 20 s: every message must still arrive, with fewer
//     timer runs.
func TestTimerWorkBoundedByUsefulWork(t *testing.T) {
	type result struct{ events, flushes uint64 }
	run := func(t *testing.T, scenario string, tick bool) result {
		var res result
		synctest.Test(t, func(t *testing.T) {
			cfg := &Config{hooks: &testHooks{kcpTick: tick}}
			p := newSimPair(t, 5, cfg, cfg, false)
			p.srvH.newConn = func() *recordConn { r := newRecordConn(); r.echo = true; return r }
			require.NoError(t, p.cli.Start(t.Context()))
			synctest.Wait()
			conn := p.cli.Conn()
			srvConn := func() *Conn { p.srvH.mu.Lock(); defer p.srvH.mu.Unlock(); return p.srvH.conns[0] }()
			switch scenario {
			case "unacked":
				time.Sleep(time.Second) // settle: handshake, confirmation
				synctest.Wait()
				p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Blackhole: true})
				before := p.srv.Stats()
				_, err := srvConn.Write([]byte("unacknowledged"))
				require.NoError(t, err)
				time.Sleep(3 * time.Second)
				synctest.Wait()
				after := p.srv.Stats()
				res = result{after.TimerEvents - before.TimerEvents, after.TimerFlushes - before.TimerFlushes}
			case "loss5":
				imp := netsim.Impairment{Loss: 0.05, Delay: 10 * time.Millisecond}
				p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), imp)
				p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), imp)
				before := p.srv.Stats()
				const n = 400
				for i := range n {
					_, err := conn.Write(testMessage(i, 100))
					require.NoError(t, err)
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(5 * time.Second)
				synctest.Wait()
				_, msgs, _ := p.cliH.snapshot()
				require.Len(t, msgs, n, "every echo arrived despite the loss")
				after := p.srv.Stats()
				res = result{after.TimerEvents - before.TimerEvents, after.TimerFlushes - before.TimerFlushes}
			}
		})
		return res
	}
	for _, tc := range []struct {
		scenario string
		maxRatio float64 // deadline-driven events ÷ ticked events
	}{
		{"unacked", 0.25},
		{"loss5", 0.8},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			var now, old result
			t.Run("deadline", func(t *testing.T) { now = run(t, tc.scenario, false) })
			t.Run("tick-baseline", func(t *testing.T) { old = run(t, tc.scenario, true) })
			t.Logf("%s: timer events %d (baseline tick: %d), RTO flushes %d", tc.scenario, now.events, old.events, now.flushes)
			require.Positive(t, old.events)
			require.LessOrEqual(t, float64(now.events), tc.maxRatio*float64(old.events),
				"timer work must follow the deadlines, not KCP's tick")
		})
	}
}

// TestTimerSlicesInterleave: 600 sessions of one worker all come due in
// the same millisecond (each has a message in flight whose ACKs are
// black-holed). The worker runs them in slices of timerSlice, taking
// inbound work between slices, and every one of them still retransmits,
// and every message arrives once the path is back.
func TestTimerSlicesInterleave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sessions = 600
		n := newDialerNet(t, 7, 1, netsim.Impairment{Delay: 2 * time.Millisecond}, &Config{Workers: 1})
		conns := make([]*Conn, sessions)
		handlers := make([]*recordConn, sessions)
		for i := range sessions {
			handlers[i] = newRecordConn()
			c, err := n.d.Dial(t.Context(), n.addrs[0], handlers[i])
			require.NoError(t, err)
			conns[i] = c
		}
		time.Sleep(time.Second)
		synctest.Wait()
		s := n.d.ep.shards[0]
		cuts, flushes := s.traffic.timerCuts.Load(), s.traffic.timerFlushes.Load()
		// The server's answers (ACKs, echoes) are lost from now on.
		n.net.SetLink(n.addrs[0], conns[0].LocalAddr(), netsim.Impairment{Blackhole: true})
		for i, c := range conns {
			_, err := c.Write(testMessage(i, 100))
			require.NoError(t, err)
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		require.Greater(t, s.traffic.timerCuts.Load(), cuts, "600 due timers take more than one slice")
		require.GreaterOrEqual(t, s.traffic.timerFlushes.Load()-flushes, uint64(sessions), "every session retransmitted")
		// Memory accounting: the unacknowledged message holds a whole
		// segment buffer.
		require.GreaterOrEqual(t, conns[0].Stats().HeldBytes, kcpSegBuf+100)
		n.net.SetLink(n.addrs[0], conns[0].LocalAddr(), netsim.Impairment{Delay: 2 * time.Millisecond})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		for i, h := range handlers {
			_, got, closed := h.snapshot()
			require.Empty(t, closed)
			require.Len(t, got, 1, "session %d: its echo arrived", i)
			require.Zero(t, conns[i].Stats().HeldBytes, "session %d holds nothing once acknowledged", i)
		}
		require.Zero(t, n.servers[0].Stats().HeldBytes)
	})
}

// TestIdleSessionTimerEvents: an established session with nothing to send
// runs its timer only for real deadlines (its path MTU confirmation, every
// 30-45 s, and its idle and rekey timers), not once a second to look at a
// retransmission count that cannot have moved (pmtud.go: the check is
// lazy). 10,000 such sessions cost 10,000 timer events a second before.
func TestIdleSessionTimerEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{}
		p := newSimPair(t, 9, cfg, cfg, false)
		require.NoError(t, p.cli.Start(t.Context()))
		time.Sleep(5 * time.Second) // handshake, path MTU search
		synctest.Wait()
		srvConn := func() *Conn { p.srvH.mu.Lock(); defer p.srvH.mu.Unlock(); return p.srvH.conns[0] }()
		require.Greater(t, srvConn.PathMTU(), pmtuBase, "the search ran: the session has a size to confirm")
		before := p.srv.Stats().TimerEvents
		const idle = 60 * time.Second
		time.Sleep(idle)
		synctest.Wait()
		events := p.srv.Stats().TimerEvents - before
		t.Logf("server timer events over %v idle: %d", idle, events)
		require.LessOrEqual(t, events, uint64(idle/pmtuConfirmEvery)+4, "no wake per second while idle")
	})
}

// TestTimersRunUnderSteadyInput: a session that receives a packet more
// often than once a millisecond still runs its timers when they are due.
// The client reads a bulk stream through a 20 Mbit/s bottleneck (a data
// packet every 0.56 ms) with adaptive FEC, whose loss report is a timer:
// one 100 ms after the start, then one every 500 ms. (Input used to
// reschedule a deadline already due to a millisecond after the input, so
// that while packets kept coming the timer never ran: reports went out
// only in a pause of the stream, 1.6 s late, and the sender kept parity
// its peer's loss no longer asked for; TestBottleneckAdaptiveFEC.)
func TestTimersRunUnderSteadyInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := gatedModel
		cfg.FEC = FECConfig{DataShards: 10, MaxParity: 3, Adaptive: true}
		r := newBottleneckRig(t, 75, 1, netsim.BottleneckConfig{Rate: 20_000_000, QueueDelay: 50 * time.Millisecond, Delay: 10 * time.Millisecond}, cfg)
		time.Sleep(3 * time.Second)
		got, st := r.sample()
		reports := r.cli[0].Session().traffic.lossReports.Load()
		t.Logf("client read %d bytes, bottleneck carried %d packets; loss reports %d", got[0], st.Enqueued, reports)
		require.Greater(t, got[0], int64(5_000_000), "the stream kept the client busy")
		// Due at 0.1, 0.6, ..., 2.6 s after the session started: 6.
		require.GreaterOrEqual(t, reports, uint64(6), "every report went when due")
	})
}
