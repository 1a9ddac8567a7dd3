package uxp

import (
	"fmt"
	"testing"

	"github.com/uxp-go/uxp/internal/sockio"
)

// BenchmarkReadBatch measures the server read path per datagram (recvmmsg,
// GRO split, copy into a pool buffer, routing, hand-off to the shard, and
// the shard freeing it) for several messages per call: 1 is the
// one-message-per-call GRO reader uxp had before, 8 the default. Bursts of
// 256 datagrams are sent with the timer stopped, then read. "bulk" is one
// GSO sender of 1400-byte datagrams (merged by GRO), "flows" 64 senders of
// 150-byte datagrams (what a game server sees).
func BenchmarkReadBatch(b *testing.B) {
	const burst = 256
	for _, scen := range []string{"bulk", "flows"} {
		for _, cnt := range []int{1, sockio.DefaultReadBatch, 32} {
			b.Run(fmt.Sprintf("%s/msgs=%d", scen, cnt), func(b *testing.B) {
				ep, c, u := readingEndpoint(b, true)
				ep.batch = sockio.NewReader(&ep.sock, true, maxDatagram, cnt)
				to := addrOf(u)
				snd := sendingShard(b, udpSocket(b))
				flows := make([]*shard, 64)
				if scen == "flows" {
					for i := range flows {
						flows[i] = sendingShard(b, udpSocket(b))
					}
				}
				size := 1400
				if scen == "flows" {
					size = 150
				}
				send := func() {
					for i := range burst {
						s := snd
						if scen == "flows" {
							s = flows[i%len(flows)]
						}
						buf := s.sendRoom()[:size]
						putTransportHeader(buf, c.id, uint64(i), 0)
						s.commitSend(size, to, c)
						if scen == "flows" {
							s.flushSends()
						}
					}
					snd.flushSends()
				}
				read := func() {
					got := 0
					for got < burst {
						if done, err := ep.readOnce(); done {
							b.Fatal(err)
						}
						for len(c.shard.in) > 0 {
							bt := <-c.shard.in
							got += bt.n
							c.shard.discardBatch(bt)
						}
					}
				}
				send()
				read() // warm up pools
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i += burst {
					b.StopTimer()
					send()
					b.StartTimer()
					read()
				}
				if d := ep.drops.snapshot().Total(); d != 0 {
					b.Fatalf("%d datagrams dropped", d)
				}
			})
		}
	}
}
