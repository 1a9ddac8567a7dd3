package kcpx

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// TestMs: Ms(now) is kcp-go's own clock at the instant now, on the real
// clock (within the millisecond the two reads are apart) and under
// testing/synctest, where the bubble's clock, not the real one, is what
// kcp-go reads, and time stands still within an event: there the two are
// equal, and so is the timestamp KCP stamps on a segment it flushes.
func TestMs(t *testing.T) {
	for range 100 {
		before := Now()
		ms := Ms(time.Now())
		after := Now()
		require.True(t, int32(ms-before) >= 0 && int32(after-ms) >= 0, "Ms %d outside [%d, %d]", ms, before, after)
	}
	synctest.Test(t, func(t *testing.T) {
		f := NewFactory(Options{Tune: func(k *kcp.KCP) { k.NoDelay(1, 10, 2, 1) }})
		var ts []uint32
		k := f.New(1, func(b []byte, n int) {
			seg, _, ok := wire.NextSegment(b[:n])
			require.True(t, ok)
			ts = append(ts, seg.Ts())
		}, 0)
		for i := range 7 {
			// Every phase of the millisecond, relative to the bubble's
			// start.
			time.Sleep(time.Duration(i)*time.Millisecond + 137*time.Microsecond)
			now := time.Now()
			require.Equal(t, Now(), Ms(now))
			require.Zero(t, k.Send([]byte{byte(i)}))
			f.Flush(k, kcp.IKCP_FLUSH_FULL)
			require.Equal(t, Ms(now), ts[len(ts)-1], "KCP stamps its segments with Ms(now)")
		}
	})
}

// TestCheckDue: CheckDue compares Check's answer with KCP's own clock. A
// KCP never updated answers the clock's reading (due); after its interval
// tick it answers the next tick (not due until then). Both on the fast
// path and on the fallback path. (Compared with Ms(now) of an event's now
// a millisecond behind KCP's clock, "due now" read as "in a millisecond"
// at every wake: internal/arq TestTimersKCPClockAhead.)
func TestCheckDue(t *testing.T) {
	for _, audited := range [][]string{nil, {}} {
		synctest.Test(t, func(t *testing.T) {
			f := NewFactory(Options{Tune: func(k *kcp.KCP) { k.NoDelay(1, 10, 2, 1) }, Audited: audited})
			k := f.New(1, func([]byte, int) {}, 0)
			time.Sleep(time.Millisecond)
			require.True(t, f.CheckDue(k), "never updated: due")
			require.Equal(t, Now(), k.Check(), "Check answers KCP's clock")
			k.Update()
			require.False(t, f.CheckDue(k), "the next tick is an interval away")
			time.Sleep(10 * time.Millisecond)
			require.True(t, f.CheckDue(k), "after the interval")
		})
	}
}
