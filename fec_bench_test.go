package uxp

import (
	"context"
	"encoding/binary"
	"flag"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

var fecBenchDuration = flag.Duration("fecbench.duration", 10*time.Second, "how long each BenchmarkFECLatency mode sends")

// latencyConn records the round trip of echoed messages that carry their
// send time.
type latencyConn struct {
	NopHandler
	mu   sync.Mutex
	rtts []time.Duration
}

func (h *latencyConn) OnNewDataComing(_ *Conn, data []byte) {
	sent := time.Unix(0, int64(binary.LittleEndian.Uint64(data)))
	h.mu.Lock()
	h.rtts = append(h.rtts, time.Since(sent))
	h.mu.Unlock()
}

// BenchmarkFECLatency sends 1 KiB messages at 100 per second over an
// in-process link with 10% random loss each way and 20 ms one-way delay,
// echoed by the server, with FEC off, fixed 10/3 and adaptive, all in one
// run. It reports p50, p99 and max echo round trip and the bytes on the
// wire per message (both directions). Run it with -benchtime 1x.
func BenchmarkFECLatency(b *testing.B) {
	modes := []struct {
		name string
		fec  FECConfig
	}{
		{"off", FECConfig{}},
		{"fixed-10-3", FECConfig{DataShards: 10, ParityShards: 3}},
		{"adaptive", FECConfig{DataShards: 10, ParityShards: 3, MaxParity: 6, Adaptive: true}},
	}
	for i, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				runFECLatency(b, uint64(i), m.fec)
			}
		})
	}
}

func runFECLatency(b *testing.B, seed uint64, fc FECConfig) {
	nw := netsim.NewNetwork(seed)
	defer nw.Close()
	nw.SetDefault(netsim.Impairment{Loss: 0.1, Delay: 20 * time.Millisecond})
	kp := testKeys(b)
	spc, _ := nw.Listen("10.0.0.1:4000")
	cpc, _ := nw.Listen("10.0.0.2:5000")
	srv, err := NewServer(spc, echoServer{}, &Config{PrivateKey: kp.Private, FEC: fc})
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	defer srv.Close()
	h := &latencyConn{}
	cl, err := NewClient(cpc, spc.LocalAddr(), h, &Config{ServerPublicKey: kp.Public, FEC: fc})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 1024)
	n := int(fecBenchDuration.Seconds() * 100)
	tick := time.NewTicker(10 * time.Millisecond)
	for range n {
		<-tick.C
		binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		if _, err := cl.Conn().Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	time.Sleep(2 * time.Second)
	h.mu.Lock()
	rtts := slices.Clone(h.rtts)
	h.mu.Unlock()
	if len(rtts) != n {
		b.Fatalf("%d of %d echoes arrived", len(rtts), n)
	}
	slices.Sort(rtts)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	st, sst := cl.Conn().Stats(), srv.Stats()
	b.ReportMetric(ms(rtts[len(rtts)/2]), "p50-ms")
	b.ReportMetric(ms(rtts[len(rtts)*99/100]), "p99-ms")
	b.ReportMetric(ms(rtts[len(rtts)-1]), "max-ms")
	b.ReportMetric(float64(st.BytesSent+sst.BytesSent)/float64(n), "wire-B/msg")
	b.ReportMetric(float64(st.Retransmissions+sst.Retransmissions)/float64(n), "retrans/msg")
}
