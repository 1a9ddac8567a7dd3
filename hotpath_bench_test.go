package uxp

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/internal/replay"
	"github.com/uxp-go/uxp/internal/sockio"
)

// Per-packet hot-path micro-benchmarks. uxp's own code reports 0
// allocs/op; BenchmarkPacketRound goes through kcp-go, which makes 4 per
// round by itself (see TestHotPathZeroAlloc, which enforces both in the
// normal test run). Speed is reported, never asserted.

var benchPayloads = []int{64, 1024, 1400 - transportOverhead}

// BenchmarkSealOpen seals a frame in place behind the transport header and
// opens it in place again, as sendFrame and receive do.
func BenchmarkSealOpen(b *testing.B) {
	for _, cipher := range []Cipher{ChaCha20Poly1305, Salsa20Poly1305} {
		for _, n := range benchPayloads {
			b.Run(fmt.Sprintf("%v/%d", cipher, n), func(b *testing.B) {
				var key [ucrypto.KeySize]byte
				key[0] = 1
				send, err := ucrypto.NewAEAD(cipher, &key)
				if err != nil {
					b.Fatal(err)
				}
				recv, _ := ucrypto.NewAEAD(cipher, &key)
				buf := make([]byte, transportHeaderSize+frameHeaderSize+n, maxDatagram)
				var ctr uint64
				b.ReportAllocs()
				b.SetBytes(int64(n))
				for b.Loop() {
					putTransportHeader(buf, 7, ctr, 0)
					pkt := send.Seal(buf[:transportHeaderSize], ctr, buf[transportHeaderSize:], buf[:transportHeaderSize])
					if _, err := recv.Open(pkt[transportHeaderSize:transportHeaderSize], ctr, pkt[transportHeaderSize:], pkt[:transportHeaderSize]); err != nil {
						b.Fatal(err)
					}
					buf = buf[:transportHeaderSize+frameHeaderSize+n]
					ctr++
				}
			})
		}
	}
}

// BenchmarkTransportHeader encodes and parses a transport header.
func BenchmarkTransportHeader(b *testing.B) {
	buf := make([]byte, minTransportSize+64)
	var sink uint64
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		putTransportHeader(buf, uint32(i), i, 0)
		h, ok := parseTransportHeader(buf)
		if !ok {
			b.Fatal("rejected")
		}
		sink += uint64(h.receiver()) + h.counter()
	}
	_ = sink
}

// BenchmarkReplayWindow checks and accepts counters the way receive does:
// mostly in order, with some reordering inside the window.
func BenchmarkReplayWindow(b *testing.B) {
	var w replay.Window
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		ctr := i
		if i%8 == 7 {
			ctr = i - 5 // a replay of a counter seen 5 packets ago: Check rejects it
		}
		if w.Check(ctr) {
			w.Accept(ctr)
		}
	}
}

// BenchmarkRouting is the read loop's per-datagram work after the socket
// read: header parse, session-table lookup and the hand-off to the owning
// shard. The shard end is drained in the loop so the queue never fills.
func BenchmarkRouting(b *testing.B) {
	for _, sessions := range []int{1, 10000} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			ep, conns := newStagingEndpoint(b, 2, sessions)
			from := netip.MustParseAddrPort("127.0.0.1:4000")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c := conns[i%sessions]
				bp := getPacketBuf()
				putTransportHeader(bp.dgram(), c.id, uint64(i), 0)
				ep.dispatch(bp, 200, from)
				ep.flushStaged()
				c.shard.discardBatch(<-c.shard.in)
			}
		})
	}
}

// BenchmarkPacketRound sends one message through the whole stack between
// two sessions on real loopback sockets, driven synchronously (no
// goroutines): Write, KCP, seal, sendto; recvfrom, route, open, replay
// check, KCP, OnNewDataComing; then the ACK back the same way. One op is
// one message and its ACK.
func BenchmarkPacketRound(b *testing.B) {
	for _, n := range []int{64, 1024} {
		b.Run(fmt.Sprintf("msg=%d", n), func(b *testing.B) {
			r := newBenchRound(b, n)
			for range 100 {
				r.round(b) // warm up pools and slices
			}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				r.round(b)
			}
			if r.got == 0 {
				b.Fatal("nothing delivered")
			}
		})
	}
}

type benchRound struct {
	a, b   *Conn
	msg    []byte
	got    int
	handle countHandler
}

type countHandler struct {
	NopHandler
	n *int
}

func (h countHandler) OnNewDataComing(_ *Conn, b []byte) { *h.n += len(b) }

func newBenchRound(tb testing.TB, size int) *benchRound {
	tb.Helper()
	set, err := (&Config{}).resolve()
	if err != nil {
		tb.Fatal(err)
	}
	listen := func() *net.UDPConn {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { pc.Close() })
		return pc
	}
	pa, pb := listen(), listen()
	epA, epB := newEndpoint(pa, set, 1, nopOwner{}), newEndpoint(pb, set, 1, nopOwner{})
	// B reads as a server does (recvmmsg with GRO on Linux), A as a
	// client does (one datagram per call): both read paths are measured.
	epB.batch = sockio.NewReader(&epB.sock, true, maxDatagram, 0)
	var k1, k2 [ucrypto.KeySize]byte
	k1[0], k2[0] = 1, 2
	now := time.Now()
	ka := sessionKeys{send: k1, recv: k2}
	kb := sessionKeys{send: k2, recv: k1}
	apA := pa.LocalAddr().(*net.UDPAddr).AddrPort()
	apB := pb.LocalAddr().(*net.UDPAddr).AddrPort()
	ca, err := newConn(epA, 42, &ka, ChaCha20Poly1305, fecParams{}, apB, true, now)
	if err != nil {
		tb.Fatal(err)
	}
	cb, err := newConn(epB, 42, &kb, ChaCha20Poly1305, fecParams{}, apA, false, now)
	if err != nil {
		tb.Fatal(err)
	}
	cb.state = stateEstablished
	epA.table.set(42, ca)
	epB.table.set(42, cb)
	r := &benchRound{a: ca, b: cb, msg: make([]byte, size)}
	r.handle = countHandler{n: &r.got}
	ca.SetHandler(r.handle)
	cb.SetHandler(r.handle)
	ca.added, cb.added = true, true // skip OnReady and the first ping
	ca.shard.conns[ca] = struct{}{}
	cb.shard.conns[cb] = struct{}{}
	return r
}

// deliver reads one datagram from c's socket (the read loop's step, GRO
// included) and runs it through c's endpoint and shard, flushing the
// resulting ACKs.
func (r *benchRound) deliver(tb testing.TB, c *Conn) {
	if done, err := c.ep.readOnce(); done {
		tb.Fatal(err)
	}
	now := time.Now()
	c.shard.now = now
	for len(c.shard.in) > 0 {
		c.shard.handleBatch(<-c.shard.in)
	}
	c.shard.flushTouched(now)
	c.shard.flushSends()
}

func (r *benchRound) round(tb testing.TB) {
	if _, err := r.a.Write(r.msg); err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	r.a.shard.drainReady(now) // pump: KCP send, flush, seal
	r.a.shard.flushSends()    // sendto
	r.deliver(tb, r.b)        // open, KCP input, OnNewDataComing, ACK out
	r.deliver(tb, r.a)        // the ACK
	if w := r.a.arq.View(0).WaitSnd; w != 0 {
		tb.Fatalf("message not acknowledged: %d segments waiting", w)
	}
}
