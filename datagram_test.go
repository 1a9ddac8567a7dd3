package uxp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestDatagramsUnderLoss sends reliable messages, plain datagrams and
// "latest only" datagrams together over a link with 10% loss (plus
// duplication and reordering) each way. Datagrams may be lost but are
// never duplicated, a latest datagram never arrives after a newer one of
// its channel, and the reliable messages all arrive once, in order, intact.
func TestDatagramsUnderLoss(t *testing.T) {
	tests := []struct {
		name string
		fec  FECConfig
	}{
		{"plain", FECConfig{}},
		{"fec", FECConfig{DataShards: 10, ParityShards: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 600
				cfg := &Config{FEC: tt.fec}
				p := newSimPair(t, 61, cfg, cfg, false)
				rec := serverRecorder(p)
				p.net.SetDefault(netsim.Impairment{Loss: 0.1, Duplicate: 0.05, Reorder: 0.1, Delay: 15 * time.Millisecond, Jitter: 5 * time.Millisecond})
				require.NoError(t, p.cli.Start(context.Background()))
				conn := p.cli.Conn()
				for i := range n {
					writeRetry(t, conn, testMessage(i, 100+i%700))
					var d [5]byte
					binary.LittleEndian.PutUint32(d[1:], uint32(i))
					d[0] = 'P'
					require.NoError(t, conn.WriteDatagram(d[:]))
					d[0] = 'L'
					require.NoError(t, conn.WriteDatagramLatest(7, d[:]))
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(3 * time.Second)

				msgs, dgrams := rec.snapshot()
				require.Len(t, msgs, n, "every reliable message arrives")
				for i, m := range msgs {
					require.Zero(t, m.lane)
					require.True(t, bytes.Equal(testMessage(i, 100+i%700), m.data), "reliable message %d", i)
				}
				seen := map[uint32]bool{}
				plain, latest := 0, 0
				lastLatest := -1
				for _, d := range dgrams {
					require.Len(t, d.data, 5)
					id := binary.LittleEndian.Uint32(d.data[1:])
					require.Less(t, id, uint32(n))
					switch d.data[0] {
					case 'P':
						require.False(t, seen[id], "datagram %d delivered twice", id)
						seen[id] = true
						plain++
					case 'L':
						require.Greater(t, int(id), lastLatest, "latest datagram %d arrived after %d", id, lastLatest)
						lastLatest = int(id)
						latest++
					default:
						t.Fatalf("unknown datagram %q", d.data)
					}
				}
				srv := p.srv.Stats()
				cst := conn.Stats()
				require.EqualValues(t, 2*n, cst.Datagrams.Sent)
				if tt.fec.DataShards == 0 {
					// With FEC (10+3 against 10 % loss) every datagram can
					// be recovered, and under congestion gating, which
					// sends datagrams in the same groups as the reliable
					// data, now and then every one is (600 of 600).
					require.Less(t, plain, n, "10%% loss must lose some datagrams")
				}
				require.Greater(t, plain, n*7/10)
				require.Greater(t, latest, n*6/10)
				require.Positive(t, srv.Drops.Replay, "duplicated packets are caught by the replay window")
				t.Logf("plain %d/%d latest %d/%d, net %+v, client %+v", plain, n, latest, n, p.net.Stats(), cst.Datagrams)
				if tt.fec.DataShards > 0 {
					require.Positive(t, srv.FEC.Recovered)
				}
			})
		})
	}
}

// TestDatagramLatestSuperseded checks the receiver drops an older latest
// datagram that arrives after a newer one of its channel, and only on that
// channel: the link reorders heavily.
func TestDatagramLatestSuperseded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 62, nil, nil, false)
		rec := serverRecorder(p)
		require.NoError(t, p.cli.Start(context.Background()))
		p.net.SetDefault(netsim.Impairment{Reorder: 0.5, Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond})
		conn := p.cli.Conn()
		const n = 400
		for i := range n {
			for ch := range uint8(2) {
				var d [5]byte
				d[0] = ch
				binary.LittleEndian.PutUint32(d[1:], uint32(i))
				require.NoError(t, conn.WriteDatagramLatest(ch, d[:]))
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		_, dgrams := rec.snapshot()
		last := [2]int{-1, -1}
		got := [2]int{}
		for _, d := range dgrams {
			ch, id := d.data[0], int(binary.LittleEndian.Uint32(d.data[1:]))
			require.Greater(t, id, last[ch], "channel %d: %d after %d", ch, id, last[ch])
			last[ch] = id
			got[ch]++
		}
		p.srvH.mu.Lock()
		srvConn := p.srvH.conns[0]
		p.srvH.mu.Unlock()
		st := srvConn.Stats().Datagrams
		require.Positive(t, st.Superseded, "reordering must make some datagrams stale")
		require.EqualValues(t, got[0]+got[1], st.Received)
		require.EqualValues(t, 2*n, st.Received+st.Superseded, "no loss: every datagram delivered or superseded")
		require.Equal(t, n-1, last[0])
		require.Equal(t, n-1, last[1])
	})
}

// TestDatagramLimits checks the size limit and the error results.
func TestDatagramLimits(t *testing.T) {
	for _, fecOn := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			cfg := &Config{}
			want := defaultMTUIPv4 - datagramOverhead // netsim's addresses are IPv4
			if fecOn {
				cfg.FEC = FECConfig{DataShards: 4, ParityShards: 2}
				want -= 13
			}
			p := newSimPair(t, 63, cfg, cfg, false)
			rec := serverRecorder(p)
			// A round trip of 2 ms: PMTUD's first probe, due when the
			// session is ready, cannot have been answered when Start
			// returns (on a path of no delay it could be, within the
			// same instant).
			p.net.SetDefault(netsim.Impairment{Delay: time.Millisecond})
			require.NoError(t, p.cli.Start(context.Background()))
			conn := p.cli.Conn()
			require.Equal(t, pmtuBase-datagramOverhead-(defaultMTUIPv4-datagramOverhead-want), conn.MaxDatagramSize(), "path MTU discovery starts at its base")
			time.Sleep(100 * time.Millisecond)
			require.Equal(t, want, conn.MaxDatagramSize(), "and confirms the full size")
			require.ErrorIs(t, conn.WriteDatagram(make([]byte, want+1)), ErrMessageTooLarge)
			require.ErrorIs(t, conn.WriteDatagramLatest(3, make([]byte, want+1)), ErrMessageTooLarge)
			require.NoError(t, conn.WriteDatagram(nil), "an empty datagram sends nothing")
			big := bytes.Repeat([]byte{0xab}, want)
			require.NoError(t, conn.WriteDatagram(big))
			require.NoError(t, conn.WriteDatagramLatest(3, big))
			time.Sleep(200 * time.Millisecond)
			_, dgrams := rec.snapshot()
			require.Len(t, dgrams, 2)
			for _, d := range dgrams {
				require.Equal(t, big, d.data)
			}
			require.Zero(t, p.srv.Stats().Drops.Total(), "a full-size datagram fits the MTU")
			require.NoError(t, conn.Close())
			<-conn.Done()
			err := conn.WriteDatagram([]byte{1})
			require.True(t, errors.Is(err, ErrConnClosed), "got %v", err)
		})
	}
}
