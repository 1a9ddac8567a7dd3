package uxp

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// mtuRecorder is a recordConn that also records OnPathMTUChanged.
type mtuRecorder struct {
	*recordConn
	mu      sync.Mutex
	changes []int
}

func (r *mtuRecorder) OnPathMTUChanged(c *Conn, mtu int) {
	r.mu.Lock()
	r.changes = append(r.changes, mtu)
	r.mu.Unlock()
}

func (r *mtuRecorder) seen() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.changes...)
}

var _ PathMTUHandler = (*mtuRecorder)(nil)

// limitPath makes both directions between the pair drop packets longer
// than mtu (0: no limit).
func limitPath(p *simPair, mtu int) {
	p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{MTU: mtu, Delay: 5 * time.Millisecond})
	p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), netsim.Impairment{MTU: mtu, Delay: 5 * time.Millisecond})
}

// TestPathMTUDiscovery: on a path that drops everything above 1280 bytes
// the session starts at 1200, settles at exactly 1280 on both sides, and a
// 5000-byte message and a datagram of the largest size then arrive.
func TestPathMTUDiscovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 40, nil, nil, false)
		limitPath(p, 1280)
		rec := &mtuRecorder{recordConn: newRecordConn()}
		p.cli, _ = NewClient(p.cliPC, p.srvPC.LocalAddr(), rec, p.cliCfg)
		t.Cleanup(func() { p.cli.Close() })
		require.NoError(t, p.cli.Start(context.Background()))
		c := p.cli.Conn()
		require.Equal(t, defaultMTUIPv4, c.MTU(), "the negotiated maximum")
		require.Equal(t, pmtuBase, c.PathMTU(), "starts at the safe base")
		time.Sleep(10 * time.Second)
		require.Equal(t, 1280, c.PathMTU(), "the largest size that passes")
		require.Equal(t, 1280, rec.seen()[len(rec.seen())-1])
		conns, _, _ := p.srvH.counts()
		require.Equal(t, 1, conns)
		sc := p.srvH.conns[0]
		require.Equal(t, 1280, sc.PathMTU(), "the server probes its direction too")
		require.Equal(t, 1280-datagramOverhead, c.MaxDatagramSize())

		srec := serverRecorder(p)
		_ = srec
		big := bytes.Repeat([]byte{0x42}, 5000)
		_, err := c.Write(big)
		require.NoError(t, err)
		dg := bytes.Repeat([]byte{0x17}, c.MaxDatagramSize())
		require.NoError(t, c.WriteDatagram(dg))
		time.Sleep(time.Second)
		h := p.srvH.handler(0)
		_, msgs, _ := h.snapshot()
		require.Equal(t, [][]byte{big}, msgs)
		require.Equal(t, uint64(1), sc.Stats().Datagrams.Received)
		require.Zero(t, c.Stats().Retransmissions, "nothing was sent that the path cannot carry")
	})
}

// TestPathMTUShrink: a session that settled at the default maximum (1472)
// keeps delivering when the path shrinks to 1280 mid-transfer: it detects
// the black hole, falls back, searches again and settles at 1280; segments
// built for 1472
// travel fragmented meanwhile. Every message arrives once and in order,
// on lane 0 and on another lane, with and without FEC.
func TestPathMTUShrink(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		lane int
	}{
		{name: "plain"},
		{name: "fec", cfg: Config{FEC: FECConfig{DataShards: 4, ParityShards: 2}}},
		{name: "lane 1", cfg: Config{Lanes: make([]LaneConfig, 2)}, lane: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newSimPair(t, 41, &tt.cfg, &tt.cfg, false)
				limitPath(p, 0)
				lrec := serverRecorder(p)
				rec := &mtuRecorder{recordConn: newRecordConn()}
				p.cli, _ = NewClient(p.cliPC, p.srvPC.LocalAddr(), rec, p.cliCfg)
				t.Cleanup(func() { p.cli.Close() })
				require.NoError(t, p.cli.Start(context.Background()))
				c := p.cli.Conn()
				time.Sleep(5 * time.Second)
				require.Equal(t, defaultMTUIPv4, c.PathMTU())

				const n = 40
				var want [][]byte
				for i := range n {
					msg := bytes.Repeat([]byte{byte(i)}, 5000)
					want = append(want, msg)
					_, err := c.WriteLane(tt.lane, msg)
					require.NoError(t, err)
					if i == 5 {
						limitPath(p, 1280) // shrinks with segments of 1472 in flight
					}
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(20 * time.Second)
				msgs, _ := lrec.snapshot()
				var got [][]byte
				for _, e := range onLane(msgs, tt.lane) {
					got = append(got, e.data)
				}
				require.Equal(t, want, got)
				require.Equal(t, 1280, c.PathMTU())
				seen := rec.seen()
				require.Contains(t, seen, pmtuBase, "fell back to the base")
				require.Equal(t, 1280, seen[len(seen)-1])
				require.Nil(t, c.Err(), "the session lives on")
				require.NotZero(t, c.fragsSent.Load(), "segments built for 1472 went fragmented")
				t.Logf("path MTU changes %v, %d frames fragmented, %d retransmissions", seen, c.fragsSent.Load(), c.Stats().Retransmissions)
			})
		})
	}
}
