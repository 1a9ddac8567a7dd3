package uxp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"maps"
	"net"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/wire"
)

// TestStreamLoneWriteNotDelayed: on an idle stream a small write leaves at
// once (no Nagle-style wait for an acknowledgement), and so does each
// request of a ping-pong exchange.
func TestStreamLoneWriteNotDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 10 * time.Millisecond
		p := newStreamPair(t, 41, netsim.Impairment{Delay: oneWay}, nil, nil)
		buf := make([]byte, 64)
		for i := range 5 {
			start := time.Now()
			_, err := p.cli.Write([]byte("ping"))
			require.NoError(t, err)
			_, err = p.cli.Write([]byte("!")) // a second write right behind the first
			require.NoError(t, err)
			got := 0
			for got < 5 {
				n, err := p.srv.Read(buf[got:])
				require.NoError(t, err)
				got += n
			}
			require.Equal(t, "ping!", string(buf[:5]))
			require.LessOrEqual(t, time.Since(start), oneWay+time.Millisecond, "round %d: no coalescing delay", i)
			_, err = p.srv.Write([]byte("pong"))
			require.NoError(t, err)
			_, err = io.ReadFull(p.cli, buf[:4])
			require.NoError(t, err)
		}
	})
}

// TestStreamCoalescesSmallWrites: 20-byte writes behind a full window are
// sent as segment-size messages, not one message per write, and every
// byte arrives once, in order; Close hands the last partial message over.
func TestStreamCoalescesSmallWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 42, netsim.Impairment{Delay: 20 * time.Millisecond}, nil, nil)
		const writes = 20_000
		var want bytes.Buffer
		done := make(chan []byte)
		go func() {
			got, _ := io.ReadAll(p.srv)
			done <- got
		}()
		var f [20]byte
		for i := range writes {
			binary.LittleEndian.PutUint32(f[:], uint32(i))
			want.Write(f[:])
			n, err := p.cli.Write(f[:])
			require.NoError(t, err)
			require.Equal(t, len(f), n)
		}
		require.NoError(t, p.cli.Close())
		got := <-done
		require.True(t, bytes.Equal(want.Bytes(), got), "all %d bytes once and in order (got %d)", want.Len(), len(got))
		msgs := p.srv.Session().Stats().MessagesReceived
		t.Logf("%d writes of 20 bytes arrived as %d messages", writes, msgs)
		// 308 if every message were a full segment; the first writes,
		// before the window fills, go one by one, and how many depends on
		// the goroutines' interleaving (about 400 to 900).
		require.Less(t, msgs, uint64(writes/10), "coalesced into segment-size messages")
	})
}

// TestStreamSendQueueBoundedByTime: a writer flooding a stream whose
// path is an 8 Mbit/s bottleneck (netsim.BottleneckConn on the client's
// egress, 10 ms of propagation each way) is held back by the time bound:
// what waits unsent in the session stays a few milliseconds' worth
// (ConnStats.SendQueueDelay) instead of filling Config.SendQueueBytes
// (1 MiB, a second at this rate), and everything arrives.
//
// With CongestionNone the packets KCP's window puts in flight queue at
// the bottleneck instead (its queue is unbounded here): unsent data waits
// less than 30 ms. Under the default controller the bottleneck's queue
// stays short (under 100 ms; KCP's window alone takes it to about 210)
// and data waits in the session instead, for the window and the pacer:
// at most 80 ms, four base round trips (29-48 ms measured over runs: in
// Drain the pacing rate is 0.35 of the path's, in ProbeBW DOWN 0.75, and
// a full window waits for the next ACK).
func TestStreamSendQueueBoundedByTime(t *testing.T) {
	tests := []struct {
		name     string
		alg      CongestionControl
		maxDelay time.Duration
	}{
		{"none", CongestionNone, 30 * time.Millisecond},
		{"default", "", 80 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := netsim.NewNetwork(45)
				t.Cleanup(func() { n.Close() })
				n.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
				kp := testKeys(t)
				spc, err := n.Listen("10.0.0.1:4000")
				require.NoError(t, err)
				cpc, err := n.Listen("10.0.0.2:5000")
				require.NoError(t, err)
				bc := netsim.NewBottleneckConn(cpc, netsim.BottleneckConfig{Rate: 8_000_000})
				ln, err := Listen(spc, &Config{PrivateKey: kp.Private, CongestionControl: tt.alg})
				require.NoError(t, err)
				t.Cleanup(func() { ln.Close() })
				cli, err := DialConnOver(context.Background(), bc, spc.LocalAddr(), &Config{ServerPublicKey: kp.Public, CongestionControl: tt.alg})
				require.NoError(t, err)
				t.Cleanup(func() { cli.Close() })
				srv, err := ln.Accept()
				require.NoError(t, err)
				t.Cleanup(func() { srv.Close() })

				data := testMessage(45, 3<<20)
				read := make(chan []byte, 1)
				go func() {
					got, _ := io.ReadAll(srv)
					read <- got
				}()
				stop := make(chan struct{})
				maxQueued, maxDelay := 0, time.Duration(0)
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					for {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
						st := cli.Session().Stats()
						maxQueued = max(maxQueued, st.SendQueueBytes)
						maxDelay = max(maxDelay, st.SendQueueDelay)
					}
				}()
				start := time.Now()
				for off := 0; off < len(data); off += 1000 {
					_, err := cli.Write(data[off:min(off+1000, len(data))])
					require.NoError(t, err)
				}
				close(stop)
				<-sampled
				require.NoError(t, cli.Close())
				got := <-read
				took := time.Since(start)
				require.True(t, bytes.Equal(data, got), "everything arrives")
				bst := bc.Stats()
				t.Logf("%.2f MB/s; send queue at most %d bytes, unsent data waited at most %v; the bottleneck's queue at most %v, %d retransmissions",
					float64(len(data))/took.Seconds()/1e6, maxQueued, maxDelay, bst.MaxQueueDelay, cli.Session().Stats().Retransmissions)
				require.Less(t, maxDelay, tt.maxDelay, "the unsent queue stays short")
				if tt.alg != CongestionNone {
					require.Less(t, bst.MaxQueueDelay, 100*time.Millisecond, "the controller keeps the bottleneck's queue short")
				}
				require.Less(t, maxQueued, defaultSendQueueBytes*3/4, "the time bound, not the byte limit, holds the writer")
				// The link carries about 0.95 MB/s of payload; KCP without
				// congestion control loses some of it to retransmissions as the
				// bottleneck's queue grows, and how much varies with the
				// goroutines' interleaving (0.70-0.87 MB/s over runs, with and
				// without -race). Without the bound (streamQueueMin raised out of
				// reach) the same run moved 0.58 MB/s with 1 MiB queued and 2 s
				// of wait; the build before the bound, 0.72 MB/s with 1 MiB
				// queued. The floor here only guards against the bound starving
				// the link.
				require.Greater(t, float64(len(data))/took.Seconds(), 0.6*1e6, "the link is kept busy")
			})
		})
	}
}

// TestStreamTimeBoundKeepsWindowFull: on a 50 ms path the time bound does
// not cost throughput: a bulk writer still keeps KCP's send window full,
// moving close to one window (256 segments) per round trip. The rate is
// taken over the second half of the transfer: the first includes the
// congestion controller's startup, which has nothing to do with the bound
// (over the whole transfer the rate reads 75 % of a window per RTT; 83 %
// before a controller was on by default).
func TestStreamTimeBoundKeepsWindowFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 44, netsim.Impairment{Delay: 25 * time.Millisecond}, nil, nil)
		data := testMessage(44, 8<<20)
		type result struct {
			got      []byte
			half, at time.Time
		}
		read := make(chan result, 1)
		go func() {
			var r result
			buf := make([]byte, 64<<10)
			for {
				n, err := p.srv.Read(buf)
				r.got = append(r.got, buf[:n]...)
				if r.half.IsZero() && len(r.got) >= len(data)/2 {
					r.half = time.Now()
				}
				if err != nil {
					break
				}
			}
			r.at = time.Now()
			read <- r
		}()
		for off := 0; off < len(data); off += 16 << 10 {
			_, err := p.cli.Write(data[off:min(off+16<<10, len(data))])
			require.NoError(t, err)
		}
		require.NoError(t, p.cli.Close())
		r := <-read
		require.True(t, bytes.Equal(data, r.got))
		seg := p.cli.Session().ep.set.mssAt(p.cli.Session().PathMTU())
		window := float64(defaultWindow*seg) / 0.050 // bytes per second
		rate := float64(len(data)-len(data)/2) / r.at.Sub(r.half).Seconds()
		t.Logf("%.2f MB/s over the second half, %.0f%% of one window per RTT", rate/1e6, 100*rate/window)
		require.Greater(t, rate, 0.75*window, "the window stays full")
	})
}

// TestStreamCloseHandsTailOver: bytes a Write accepted into the tail while
// the session's queue was full are still delivered when Close comes before
// there is room: the shard hands the tail over once the queue drains, then
// closes, and the reader gets everything, then io.EOF.
func TestStreamCloseHandsTailOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{MaxMessageSize: 2000, SendQueueBytes: 2000}
		p := newStreamPair(t, 46, netsim.Impairment{Delay: 5 * time.Millisecond}, cfg, cfg)
		p.net.SetDefault(netsim.Impairment{Blackhole: true}) // nothing is acknowledged
		first := testMessage(46, 1500)                       // a full segment: straight to the session
		_, err := p.cli.Write(first)
		require.NoError(t, err)
		time.Sleep(time.Millisecond)
		second := testMessage(47, 600) // into the tail; the queue has no room for it
		n, err := p.cli.Write(second)
		require.NoError(t, err)
		require.Equal(t, len(second), n, "accepted into the tail")
		require.Equal(t, len(first), p.cli.Session().Stats().SendQueueBytes, "the tail is not in the session yet")
		require.NoError(t, p.cli.Close())
		select {
		case <-p.cli.Session().Done():
			t.Fatal("the session closed before the tail was handed over")
		default:
		}
		p.net.SetDefault(netsim.Impairment{Delay: 5 * time.Millisecond})
		got, err := io.ReadAll(p.srv)
		require.NoError(t, err, "an orderly end: io.EOF")
		require.True(t, bytes.Equal(append(first, second...), got), "every accepted byte, in order")
		<-p.cli.Session().Done()
		require.NotErrorAs(t, p.cli.Session().Err(), new(*CloseError), "an orderly close")
	})
}

// sizeCounter is a PacketConn that tallies the sizes of the datagrams
// written through it.
type sizeCounter struct {
	net.PacketConn
	mu    sync.Mutex
	sizes map[int]int
}

func (s *sizeCounter) WriteTo(p []byte, addr net.Addr) (int, error) {
	s.mu.Lock()
	s.sizes[len(p)]++
	s.mu.Unlock()
	return s.PacketConn.WriteTo(p, addr)
}

// TestStreamBulkFullPackets: a bulk stream written in 16 KiB and in odd-
// sized (10,000-byte) Writes leaves in full-size packets: the pieces a
// Write hands over fill whole KCP segments (streamPiece), and what a Write
// leaves over is coalesced with the next one, so there is no short packet
// at the end of every piece. The client's packets shorter than the path's
// size during the transfer are counted.
func TestStreamBulkFullPackets(t *testing.T) {
	for _, write := range []int{16 << 10, 10_000} {
		t.Run(strconv.Itoa(write), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				kp := testKeys(t)
				n := netsim.NewNetwork(45)
				t.Cleanup(func() { n.Close() })
				n.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
				srvPC, err := n.Listen("10.0.0.1:4000")
				require.NoError(t, err)
				pc, err := n.Listen("10.0.0.2:5000")
				require.NoError(t, err)
				cliPC := &sizeCounter{PacketConn: pc, sizes: make(map[int]int)}
				ln, err := Listen(srvPC, &Config{PrivateKey: kp.Private})
				require.NoError(t, err)
				t.Cleanup(func() { ln.Close() })
				cli, err := DialConnOver(context.Background(), cliPC, srvPC.LocalAddr(), &Config{ServerPublicKey: kp.Public})
				require.NoError(t, err)
				t.Cleanup(func() { cli.Close() })
				c, err := ln.Accept()
				require.NoError(t, err)
				srv := c.(*StreamConn)
				t.Cleanup(func() { srv.Close() })
				time.Sleep(time.Second) // path MTU discovery confirms the maximum
				full := cli.Session().PathMTU()
				require.Equal(t, defaultMTUIPv4, full)

				cliPC.mu.Lock()
				idle := maps.Clone(cliPC.sizes) // handshake, probes, heartbeats
				cliPC.mu.Unlock()

				data := testMessage(45, 4<<20)
				read := make(chan []byte, 1)
				go func() {
					got, _ := io.ReadAll(srv)
					read <- got
				}()
				for off := 0; off < len(data); off += write {
					_, err := cli.Write(data[off:min(off+write, len(data))])
					require.NoError(t, err)
				}
				require.NoError(t, cli.Close())
				require.True(t, bytes.Equal(data, <-read))

				cliPC.mu.Lock()
				defer cliPC.mu.Unlock()
				// A full-size segment fills the packet when it carries a
				// fragment number and una and wnd (frg ≠ 0, U: 10 bytes of
				// record header) and leaves one byte when it is the last
				// of its message (no frg byte: 9); without U (most of a
				// one-way flow) each leaves 4 bytes more (protocol.md
				// section 3.5). All are full segments.
				fullSize := func(size int) bool {
					return size == full || size == full-1 || size == full-4 || size == full-5
				}
				fulls, short := 0, 0
				for size, k := range cliPC.sizes {
					switch {
					case fullSize(size):
						fulls += k - idle[size]
					case size < full:
						short += k - idle[size]
					}
				}
				t.Logf("%d full-size packets, %d shorter ones (ACKs and the close included)", fulls, short)
				// The data needs len(data)/(full − 36) full segments; at
				// most one packet in 20 may be short (below), so at least
				// 19 in 20 of those go full. (The bound was len(data)/full
				// with 50 bytes of framing; with 38, 10,000-byte Writes
				// leave 1,397 bytes over instead of 47, and the ~60 of them
				// sent alone carry more of the data: 2,851-2,856 full
				// packets of the 2,924 needed, against len(data)/full =
				// 2,849.)
				need := len(data) / (full - transportOverhead - wire.RecordLastMaxHeader)
				require.Greater(t, fulls, need*19/20, "the data went in full-size packets")
				// Pieces of 16 KiB each ended in a short packet: 9 % of
				// the packets for 16 KiB Writes, 14 % for 10,000-byte
				// ones. Left: a Write's last bytes handed over on their
				// own when the queue ran empty before the next Write
				// came (the tail never waits for more), about 2 %.
				require.Less(t, short, fulls/20, "at most one packet in 20 short")
			})
		})
	}
}
