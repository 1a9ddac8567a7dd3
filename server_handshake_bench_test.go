package uxp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

// BenchmarkServerHandshake measures the server side of one complete NK
// handshake as the read loop runs it: handleInitiation (mac1 check,
// half-open and replay lookups, readInitiation, policy, reset token,
// writeResponse, newConn, the half-open table, the reply's send). Each
// iteration answers a fresh initiation from its own client ephemeral key;
// the initiations are built before the timer starts. ns/op is the
// server's cost per handshake (the shard's half-open scheduling runs on
// another goroutine and is not in it).
func BenchmarkServerHandshake(b *testing.B) {
	kp := testKeys(b)
	n := netsim.NewNetwork(1)
	defer n.Close()
	pc, err := n.Listen("10.0.0.1:4000")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(pc, nil, &Config{PrivateKey: kp.Private})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	// One source per handshake, so that the per-source session limit
	// (admission.go) measures its bookkeeping and never refuses.
	from := make([]netip.AddrPort, b.N)
	for i := range from {
		from[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 5000)
	}
	inits := make([][]byte, b.N)
	for i := range inits {
		inits[i] = append([]byte(nil), testInitiation(b, kp.Public, clientIdentity{}).initiation()...)
	}
	before := srv.completed.Load()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		srv.handleInitiation(inits[i], from[i], now, false)
	}
	b.StopTimer()
	if got := srv.completed.Load() - before; got != uint64(b.N) {
		b.Fatalf("%d of %d handshakes completed", got, b.N)
	}
}
