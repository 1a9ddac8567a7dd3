package uxp

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/fec"
	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/wire"
)

// sizeTap is a netsim Drop function that records the size of every
// datagram of a link and, while dropEvery is positive, drops every
// dropEvery-th datagram of at least bigDatagram bytes (data, not ACKs,
// heartbeats or loss reports).
type sizeTap struct {
	mu        sync.Mutex
	sizes     []int
	big       int
	dropEvery int
}

const bigDatagram = 1000

func (s *sizeTap) drop(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(p))
	if len(p) < bigDatagram {
		return false
	}
	s.big++
	return s.dropEvery > 0 && s.big%s.dropEvery == 0
}

// take returns the sizes recorded since the last take, of at least
// bigDatagram bytes, and starts over.
func (s *sizeTap) take() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, n := range s.sizes {
		if n >= bigDatagram {
			out = append(out, n)
		}
	}
	s.sizes = s.sizes[:0]
	return out
}

func (s *sizeTap) setDropEvery(n int) {
	s.mu.Lock()
	s.dropEvery = n
	s.mu.Unlock()
}

// newTappedPair is a simPair whose client-to-server link (10 ms) goes
// through a sizeTap; the reverse link has the same delay.
func newTappedPair(t *testing.T, seed uint64, cfg *Config) (*simPair, *sizeTap, *laneRecorder) {
	t.Helper()
	p := newSimPair(t, seed, cfg, cfg, false)
	rec := serverRecorder(p)
	tap := &sizeTap{}
	p.net.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
	p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Delay: 10 * time.Millisecond, Drop: tap.drop})
	require.NoError(t, p.cli.Start(context.Background()))
	return p, tap, rec
}

// TestFECSegmentSize: on a clean path a session with adaptive FEC (parity
// 0) sends exactly the datagrams of one without FEC, full-size segments
// filling the packet, with the same MaxDatagramSize; one with fixed FEC
// keeps the FEC room (13 bytes) in every segment and datagram limit.
func TestFECSegmentSize(t *testing.T) {
	const msgs, size = 20, 4000
	tests := []struct {
		name  string
		fec   FECConfig
		sized bool // the FEC room reserved
	}{
		{"off", FECConfig{}, false},
		{"adaptive", FECConfig{DataShards: 10, MaxParity: 3, Adaptive: true}, false},
		{"fixed", FECConfig{DataShards: 10, ParityShards: 3}, true},
	}
	var offSizes []int
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, tap, rec := newTappedPair(t, 31, &Config{FEC: tt.fec})
				conn := p.cli.Conn()
				time.Sleep(5 * time.Second) // path MTU discovery reaches the 1472-byte maximum
				require.Equal(t, defaultMTUIPv4, conn.PathMTU())
				if tt.fec.Adaptive {
					require.Zero(t, conn.Stats().FEC.Parity)
				}
				require.Equal(t, tt.sized, conn.fecSized.Load())
				room := 0
				if tt.sized {
					room = fecFraming
				}
				require.Equal(t, defaultMTUIPv4-wire.TransportOverhead-wire.LatestSize-room, conn.MaxDatagramSize())
				tap.take()
				for i := range msgs {
					writeRetry(t, conn, testMessage(i, size))
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(time.Second)
				sizes := tap.take()
				got, _ := rec.snapshot()
				require.Len(t, got, msgs)
				for i, m := range got {
					require.True(t, bytes.Equal(testMessage(i, size), m.data), "message %d", i)
				}
				slices.Sort(sizes)
				// A full-size segment fills its datagram when its record
				// carries una and wnd (U), and leaves those 4 bytes free
				// when the peer holds them (docs/protocol.md section 3.5).
				isFull := func(n, limit int) bool { return n == limit || n == limit-4 }
				full := 0
				for _, n := range sizes {
					if isFull(n, defaultMTUIPv4) {
						full++
					}
				}
				t.Logf("%s: %d data datagrams, %d full-size (%d bytes, or 4 less without U), largest %d", tt.name, len(sizes), full, defaultMTUIPv4, sizes[len(sizes)-1])
				switch tt.name {
				case "off":
					require.Equal(t, 2*msgs, full, "two full-size segments a message fill their datagrams")
					offSizes = sizes
				case "adaptive":
					require.Equal(t, offSizes, sizes, "the datagrams of FEC off")
				case "fixed":
					// A data shard of a full segment leaves the 2 bytes
					// by which its parity is longer free.
					shards := 0
					for _, n := range sizes {
						if isFull(n, defaultMTUIPv4-fecParityExtra) {
							shards++
						}
					}
					require.Equal(t, 2*msgs, shards, "full segments in data shards")
				}
			})
		})
	}
}

// TestFECAdaptiveResize: an adaptive session sends full-size segments at
// parity 0. When loss makes the parity rise, the lanes' segments shrink so
// that data shards fit the packet, and the segments KCP built at the full
// size before (queued, or lost and resent) go directly, outside FEC. When
// the loss ends and the parity is back at 0, the segments keep the FEC
// room for fecGrowReports more reports, then grow to full size again.
// Every message arrives once, in order, and a datagram of MaxDatagramSize
// (larger than a shard) sent while parity is on arrives whole. On one lane
// and on the second of two (the lane byte).
func TestFECAdaptiveResize(t *testing.T) {
	tests := []struct {
		name  string
		lanes int
		lane  int
	}{
		{"one lane", 1, 0},
		{"lane 1 of 2", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const size = 4000
				cfg := &Config{FEC: FECConfig{DataShards: 10, MaxParity: 3, Adaptive: true}, Lanes: make([]LaneConfig, tt.lanes)}
				var maxData atomic.Int64 // the largest data shard, written on the shard
				hooksOf(cfg).dropShard = func(shard []byte) bool {
					if !fec.IsParity(shard) && int64(len(shard)) > maxData.Load() {
						maxData.Store(int64(len(shard)))
					}
					return false
				}
				p, tap, rec := newTappedPair(t, 32, cfg)
				conn := p.cli.Conn()
				next := 0
				send := func(n int, gap time.Duration) {
					for range n {
						for {
							_, err := conn.WriteLane(tt.lane, testMessage(next, size))
							if err == nil {
								break
							}
							require.ErrorIs(t, err, ErrWouldBlock)
							time.Sleep(5 * time.Millisecond)
						}
						next++
						time.Sleep(gap)
					}
				}
				time.Sleep(5 * time.Second)
				require.Equal(t, defaultMTUIPv4, conn.PathMTU())
				require.False(t, conn.fecSized.Load(), "full-size segments at parity 0")
				send(20, 20*time.Millisecond)
				require.Contains(t, tap.take(), defaultMTUIPv4, "full-size datagrams")

				// Loss: a quarter of the data datagrams.
				tap.setDropEvery(4)
				send(300, 5*time.Millisecond)
				require.Positive(t, conn.Stats().FEC.Parity, "parity rises with loss")
				require.True(t, conn.fecSized.Load(), "segments keep the FEC room")
				require.Positive(t, conn.fecDirect.Load(), "full-size segments built before go directly")
				// New segments are as large as a shard allows: the inner
				// frame fills the FEC room. (The tap may drop path MTU
				// discovery's probes too: a session that took that for
				// a black hole searched again, and may have settled a
				// little lower.)
				shardAt := func(mtu int) int64 { return int64(fec.HeaderSize + wire.FrameHeaderSize + frameRoomSized(mtu, true)) }
				require.Contains(t, []int64{shardAt(defaultMTUIPv4), shardAt(conn.PathMTU())}, maxData.Load())
				tap.setDropEvery(0)
				tap.take()
				before := conn.fecDirect.Load()
				send(20, 20*time.Millisecond)
				require.Positive(t, conn.Stats().FEC.Parity)
				require.Equal(t, before, conn.fecDirect.Load(), "new segments fit a shard")

				// A datagram larger than a shard goes directly.
				big := conn.MaxDatagramSize()
				require.Equal(t, conn.PathMTU()-wire.TransportOverhead-wire.LatestSize, big, "the limit without FEC")
				require.NoError(t, conn.WriteDatagramLatest(1, bytes.Repeat([]byte{7}, big)))
				time.Sleep(100 * time.Millisecond)
				require.Equal(t, before+1, conn.fecDirect.Load())

				// Clean again: the parity decays to 0, the segments grow
				// back fecGrowReports reports later.
				var zeroAt time.Time
				for range 400 {
					send(1, 50*time.Millisecond)
					if conn.Stats().FEC.Parity == 0 && zeroAt.IsZero() {
						zeroAt = time.Now()
						require.True(t, conn.fecSized.Load(), "segments keep the FEC room right after parity reaches 0")
					}
					if !conn.fecSized.Load() {
						break
					}
				}
				require.False(t, zeroAt.IsZero(), "parity back at 0")
				require.False(t, conn.fecSized.Load(), "full-size segments again")
				grown := time.Since(zeroAt)
				// The report that lowered the parity to 0 is the first of
				// fecGrowReports; zeroAt is seen up to one send (50 ms)
				// after it.
				require.Greater(t, grown, (fecGrowReports-2)*lossReportInterval, "hysteresis")
				require.LessOrEqual(t, grown, fecGrowReports*lossReportInterval)
				tap.take()
				send(20, 20*time.Millisecond)
				require.Contains(t, tap.take(), conn.PathMTU(), "full-size datagrams again")

				time.Sleep(3 * time.Second)
				got, dgrams := rec.snapshot()
				require.Len(t, got, next, "every message, once")
				for i, m := range got {
					require.Equal(t, tt.lane, m.lane)
					require.True(t, bytes.Equal(testMessage(i, size), m.data), "message %d", i)
				}
				require.Len(t, dgrams, 1)
				require.Len(t, dgrams[0].data, big)
				t.Logf("direct %d, parity %+v, grown %v after parity 0, path MTU %d", conn.fecDirect.Load(), conn.Stats().FEC, grown, conn.PathMTU())
			})
		})
	}
}
