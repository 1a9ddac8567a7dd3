package uxp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestKCPFallback: with internal/kcpx's audited kcp-go versions emptied
// (the kcpAudited hook), both ends run kcp-go's public API: a session
// pair still exchanges every message both ways, small and fragmented,
// over a lossy link; both endpoints log the warning and report
// KCPFastPath false. With the audited list, KCPFastPath is true and
// nothing is logged.
func TestKCPFallback(t *testing.T) {
	for _, fallback := range []bool{true, false} {
		t.Run(map[bool]string{true: "fallback", false: "fast"}[fallback], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var srvLog, cliLog bytes.Buffer
				srvCfg := &Config{Logger: slog.New(slog.NewTextHandler(&srvLog, nil))}
				cliCfg := &Config{Logger: slog.New(slog.NewTextHandler(&cliLog, nil))}
				if fallback {
					hooksOf(srvCfg).kcpAudited, hooksOf(cliCfg).kcpAudited = []string{}, []string{}
				}
				p := newSimPair(t, 17, srvCfg, cliCfg, false)
				p.srvH.newConn = func() *recordConn { r := newRecordConn(); r.echo = true; return r }
				imp := netsim.Impairment{Loss: 0.05, Delay: 10 * time.Millisecond}
				p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), imp)
				p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), imp)
				require.NoError(t, p.cli.Start(t.Context()))
				synctest.Wait()
				conn, start := p.cli.Conn(), time.Now()
				var sent [][]byte
				for i := range 200 {
					size := 100
					if i%20 == 0 {
						size = 5000 // several KCP fragments
					}
					msg := testMessage(i, size)
					_, err := conn.Write(msg)
					require.NoError(t, err)
					sent = append(sent, msg)
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(10 * time.Second)
				synctest.Wait()
				_, echoed, _ := p.cliH.snapshot()
				require.Equal(t, sent, echoed, "every message went to the server and was echoed back, in order")

				st := p.srv.Stats()
				t.Logf("retransmissions %d, packets %d/%d, virtual time %v", st.Retransmissions, st.PacketsSent, st.PacketsReceived, time.Since(start))
				require.Positive(t, st.Retransmissions, "the loss was recovered by retransmission")
				require.Equal(t, !fallback, st.KCPFastPath)
				// In race builds kcpx poisons output after its callback: a
				// packet built from kept bytes would fail here.
				require.Zero(t, st.Drops.AuthFailed+st.Drops.Malformed, "every packet that arrived was intact")
				const warning = "kcp-go fast path off"
				for _, log := range []*bytes.Buffer{&srvLog, &cliLog} {
					require.Equal(t, fallback, strings.Contains(log.String(), warning), log.String())
				}
				if fallback {
					require.Equal(t, 1, strings.Count(srvLog.String(), warning), "one warning per endpoint")
				}
			})
		})
	}
}
