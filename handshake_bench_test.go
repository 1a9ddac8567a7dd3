package uxp

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkInitiationCost compares what one initiation costs the server on
// each path: the Diffie-Hellman path (baseline: read message 1, write
// message 2) against the cookie path a server under load takes for an
// initiation without a valid mac2 (mac1 check, cookie, reply). The ratio
// is how much cheaper a spoofed flood is to absorb in cookie mode.
func BenchmarkInitiationCost(b *testing.B) {
	kp := testKeys(b)
	init := testInitiation(b, kp.Public, clientIdentity{}).initiation()
	mk := mac1Key(kp.Public, nil)
	addr := netip.MustParseAddrPort("192.0.2.1:4000")
	b.Run("dh", func(b *testing.B) {
		static := serverStatic(kp)
		var tok [resetTokenSize]byte
		b.ReportAllocs()
		for b.Loop() {
			if err := checkInitiation(init, &mk); err != nil {
				b.Fatal(err)
			}
			h, err := readInitiation(static, nil, init, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := h.writeResponse(1, statusOK, fecParams{}, &tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cookie", func(b *testing.B) {
		cc := newCookieChecker(kp.Public, rand.Reader)
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if err := checkInitiation(init, &mk); err != nil {
				b.Fatal(err)
			}
			if cc.validMAC2(init, addr, now) {
				b.Fatal("no mac2 expected")
			}
			if _, err := cc.reply(init, addr, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
