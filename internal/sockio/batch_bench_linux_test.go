package sockio

import (
	"net/netip"
	"testing"
)

// BenchmarkSendBatch measures a shard's send path per datagram for a
// batch of 64 150-byte datagrams to 64 destinations (a server answering
// many clients): one sendmmsg ("mmsg"), one sendmsg per datagram as
// without sendmmsg ("msg"), and Socket.WriteTo per datagram as off Linux
// ("writeto"). The receivers drain between batches with the timer
// stopped.
func BenchmarkSendBatch(b *testing.B) {
	const dests = 64
	for _, mode := range []string{"mmsg", "msg", "writeto"} {
		b.Run(mode, func(b *testing.B) {
			ts := newTestSender(b, udpSocket(b))
			if mode == "msg" {
				ts.s.single = true
			}
			rcv := make([]*Reader, dests)
			to := make([]netip.AddrPort, dests)
			for i := range rcv {
				u := udpSocket(b)
				sock := NewSocket(u, 0)
				rcv[i], to[i] = NewReader(&sock, false, testMaxDatagram, 0), addrOf(u)
			}
			flush := ts.flush
			if mode == "writeto" {
				flush = func() {
					for i := range ts.out.Len() {
						p, to, _ := ts.out.Packet(i)
						_ = ts.sock.WriteTo(p, to)
					}
					ts.out.Reset()
				}
			}
			b.ReportAllocs()
			b.SetBytes(150)
			b.ResetTimer()
			for i := 0; i < b.N; i += dests {
				for k := range dests {
					if ts.out.Full() {
						flush()
						ts.out.Grow()
					}
					buf := ts.out.Room()[:150]
					buf[0] = byte(i + k)
					ts.out.Commit(150, to[k], 9)
				}
				flush()
				b.StopTimer()
				for _, r := range rcv {
					if _, err := r.Read(); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
		})
	}
}
