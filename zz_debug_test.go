package uxp

import (
	"context"
	"encoding/binary"
	"testing"
	"testing/synctest"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

func TestZZDebug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 600
		cfg := &Config{}
		p := newSimPair(t, 61, cfg, cfg, false)
		rec := serverRecorder(p)
		p.net.SetDefault(netsim.Impairment{Loss: 0.1, Duplicate: 0.05, Reorder: 0.1, Delay: 15 * time.Millisecond, Jitter: 5 * time.Millisecond})
		p.cli.Start(context.Background())
		conn := p.cli.Conn()
		for i := range n {
			writeRetry(t, conn, testMessage(i, 100+i%700))
			var d [5]byte
			binary.LittleEndian.PutUint32(d[1:], uint32(i))
			conn.WriteDatagram(d[:])
			time.Sleep(5 * time.Millisecond)
			if i%50 == 0 {
				st := conn.Stats()
				msgs, _ := rec.snapshot()
				t.Logf("%d: got %d cong %+v lossout %.3f", i, len(msgs), st.Congestion, st.LossOut)
			}
		}
		for range 6 {
			time.Sleep(500 * time.Millisecond)
			st := conn.Stats()
			msgs, _ := rec.snapshot()
			t.Logf("after: got %d cong %+v", len(msgs), st.Congestion)
		}
	})
}
