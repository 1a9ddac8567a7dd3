package handshake

import (
	"net/netip"
	"testing"
	"time"
)

func FuzzCookieReply(f *testing.F) {
	var pub [32]byte
	pub[0] = 1
	init := testInitiation(f, pub, 112)
	cc := NewCookieChecker(pub, newSeededReader(10))
	encKey := LabelKey(CookieLabel, pub)
	now := time.Unix(100, 0)
	r, err := cc.Reply(init, netip.MustParseAddrPort("192.0.2.1:9"), now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r[:], []byte{192, 0, 2, 1}, uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, ip []byte, port uint16) {
		if _, err := OpenCookieReply(data, init, &encKey); err == nil && len(data) != CookieReplySize {
			t.Fatalf("accepted length %d", len(data))
		}
		var a [16]byte
		copy(a[:], ip)
		addr := netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port)
		reply, err := cc.Reply(init, addr, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenCookieReply(reply[:], init, &encKey)
		want, _ := cc.Cookie(addr, now)
		if err != nil || got != want {
			t.Fatalf("round trip: %x != %x (%v)", got, want, err)
		}
		p := append([]byte(nil), init...)
		PutMAC2(p, &got)
		if !cc.ValidMAC2(p, addr, now) {
			t.Fatal("mac2 from the cookie does not validate")
		}
	})
}
