package uxp

import (
	"fmt"
	"net/netip"
	"testing"
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
		for _, cnt := range []int{1, readBatchLen, 32} {
			b.Run(fmt.Sprintf("%s/msgs=%d", scen, cnt), func(b *testing.B) {
				ep, c, u := readingEndpoint(b, true)
				ep.batch = newBatchReaderN(u, true, cnt)
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

// BenchmarkSendBatch measures flushSends per datagram for a batch of 64
// 150-byte datagrams to 64 destinations (a server answering many
// clients): one sendmmsg ("mmsg"), one sendmsg per datagram as without
// sendmmsg ("msg"), and WriteToUDPAddrPort per datagram as off Linux
// ("writeto"). The receivers drain between batches with the timer
// stopped.
func BenchmarkSendBatch(b *testing.B) {
	const dests = 64
	for _, mode := range []string{"mmsg", "msg", "writeto"} {
		b.Run(mode, func(b *testing.B) {
			s := sendingShard(b, udpSocket(b))
			switch mode {
			case "msg":
				s.bs.single = true
			case "writeto":
				s.bs = nil
			}
			rcv := make([]*endpoint, dests)
			to := make([]netip.AddrPort, dests)
			for i := range rcv {
				ep, _, u := readingEndpoint(b, false)
				rcv[i], to[i] = ep, addrOf(u)
			}
			c := &Conn{id: 9}
			b.ReportAllocs()
			b.SetBytes(150)
			b.ResetTimer()
			for i := 0; i < b.N; i += dests {
				for k := range dests {
					buf := s.sendRoom()[:150]
					putTransportHeader(buf, 9, uint64(i+k), 0)
					s.commitSend(150, to[k], c)
				}
				s.flushSends()
				b.StopTimer()
				for _, ep := range rcv {
					if done, err := ep.readOnce(); done {
						b.Fatal(err)
					}
					for _, sh := range ep.shards {
						for len(sh.in) > 0 {
							sh.discardBatch(<-sh.in)
						}
					}
				}
				b.StartTimer()
			}
		})
	}
}
