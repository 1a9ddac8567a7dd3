package arq

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/kcpx"
)

// TestTimersKCPClockAhead: KCP's Check answers on KCP's own clock, which
// can be a millisecond ahead of Ms(now) of the event's now: on the real
// clock the event began before the call, and on kcpx's fallback path
// Ms's reference is up to a millisecond later than kcp-go's. A Check
// that answers "now" (work is due) must then still count as due. Compared
// with Ms(now) it read as a millisecond ahead at every wake, the lane's
// deadline one millisecond on, and a lane whose KCP only the interval tick
// flushes (the fallback path; a segment marked for early retransmission)
// never resent its lost segment: TestDatagramsUnderLoss/fec stalled 3 s
// with the peer holding everything but one segment (a test binary run
// outside the module, where kcpx takes the fallback path: 10 of 14,000
// seeds with GOMAXPROCS=1, 2 of 800 under -race).
//
// Every wake here runs with now a millisecond behind the bubble's clock.
// The first of two messages is lost; the second's ACK arrives without a
// flush (as the session's pump, with FEC, sends only ACKs when no new
// data came), which marks the first for early retransmission.
func TestTimersKCPClockAhead(t *testing.T) {
	for _, tt := range []struct {
		name    string
		audited []string // nil: the fast path; empty: the fallback path
	}{
		{"fast", nil},
		{"fallback", []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPair(t, testConfig(1), 0, 1)
				for _, e := range []*end{p.a, p.b} {
					e.sh.KCP = kcpx.NewFactory(kcpx.Options{Tune: tune, Audited: tt.audited})
				}
				if tt.audited != nil {
					ok, _ := p.a.sh.KCP.FastPath()
					require.False(t, ok)
				}
				now := time.Now()
				p.a.write(now, 0, msg(0, 0, 100), time.Time{})
				p.a.take() // the first message is lost
				p.a.write(now, 0, msg(0, 1, 100), time.Time{})
				time.Sleep(5 * time.Millisecond)
				now = time.Now()
				p.b.input(now, p.a.take())
				require.Empty(t, p.b.got[0], "the second waits for the first")
				time.Sleep(5 * time.Millisecond)
				now = time.Now()
				for _, f := range p.b.take() {
					p.a.ls.Input(now, f.lane, f.b, kcp.IKCP_PACKET_REGULAR)
				}
				for end := now.Add(2 * time.Second); len(p.b.got[0]) < 2; {
					require.True(t, time.Now().Before(end), "the lost message was not resent within 2 s")
					time.Sleep(time.Millisecond)
					lagged := time.Now().Add(-time.Millisecond)
					p.a.ls.Timers(lagged, NoLimit)
					p.b.ls.Timers(lagged, NoLimit)
					p.pass(lagged)
				}
				require.Equal(t, msg(0, 0, 100), p.b.got[0][0])
				require.Equal(t, msg(0, 1, 100), p.b.got[0][1])
			})
		})
	}
}
