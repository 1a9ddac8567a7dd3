package uxp

import (
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

func TestZZDebug2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 44, netsim.Impairment{Delay: 25 * time.Millisecond}, nil, nil)
		data := testMessage(44, 8<<20)
		go func() { io.ReadAll(p.srv) }()
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				st := p.cli.Session().Stats()
				t.Logf("cong %+v out %d acks %d q %v", st.Congestion, st.PacketsSent, p.srv.Session().Stats().PacketsSent, st.SendQueueDelay)
			}
		}()
		start := time.Now()
		for off := 0; off < len(data); off += 16 << 10 {
			p.cli.Write(data[off:min(off+16<<10, len(data))])
		}
		close(stop)
		p.cli.Close()
		t.Logf("took %v", time.Since(start))
	})
}
