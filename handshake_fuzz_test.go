package uxp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// Fuzz targets for the handshake messages: initiation (NK and IK),
// response, cookie reply and stateless reset. Each decoder must never
// panic; it must accept only its exact size, so memory is bounded by
// construction; and where an encoder exists, decode(encode(x)) == x. Run one
// longer with, for example:
//
//	go test -run '^$' -fuzz '^FuzzInitiation$' -fuzztime 60s .

// fuzzKey is a fixed key pair derived from b, so seeds stay valid.
func fuzzKey(tb testing.TB, b byte) KeyPair {
	tb.Helper()
	var kp KeyPair
	kp.Private[0] = b
	kp.Private[31] = 0x40
	pub, err := kp.Private.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	kp.Public = pub
	return kp
}

var fuzzPSK = bytes.Repeat([]byte{0x5a}, KeySize)

func fuzzIdentity(tb testing.TB, flags byte) clientIdentity {
	var id clientIdentity
	if flags&flagIdentity != 0 {
		ck := fuzzKey(tb, 2)
		id.static = &noise.DHKey{Private: ck.Private[:], Public: ck.Public[:]}
	}
	if flags&flagPSK != 0 {
		id.psk = fuzzPSK
	}
	return id
}

func FuzzInitiation(f *testing.F) {
	srv := fuzzKey(f, 1)
	for _, flags := range []byte{0, flagIdentity, flagPSK, flagIdentity | flagPSK} {
		c, err := newClientHandshake(srv.Public, ChaCha20Poly1305, fecParams{data: 10, parity: 3, maxParity: 3}, 9, time.Unix(0, 77), newSeededReader(flags), fuzzIdentity(f, flags), helloParams{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.initiation(), uint32(9), uint64(77), byte(ChaCha20Poly1305), flags)
		// The extended form, with connect data.
		c, err = newClientHandshake(srv.Public, ChaCha20Poly1305, fecParams{}, 9, time.Unix(0, 77), newSeededReader(flags), fuzzIdentity(f, flags), helloParams{mtu: 1400, lanes: 2, connectData: []byte("player one")})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.initiation(), uint32(9), uint64(77), byte(ChaCha20Poly1305), flags|flagExtended)
	}
	// mac1 keys of a server without and with the psk (section 4.3).
	mks := [2][32]byte{mac1Key(srv.Public, nil), mac1Key(srv.Public, fuzzPSK)}
	static := serverStatic(srv)
	cc := newCookieChecker(srv.Public, newSeededReader(3))
	addr := netip.MustParseAddrPort("192.0.2.1:9")
	f.Fuzz(func(t *testing.T, data []byte, index uint32, ts uint64, cipher byte, flags byte) {
		// Decode arbitrary bytes. Keep going after errors: the later
		// checks must cope with whatever the earlier ones let through.
		for i, psk := range [][]byte{nil, fuzzPSK} {
			if err := checkInitiation(data, &mks[i]); err != nil {
				continue
			}
			if data[3]&flagExtended != 0 {
				if len(data) < minExtInitiation || len(data) > maxInitiationSize {
					t.Fatalf("accepted extended length %d", len(data))
				}
			} else if len(data) != initiationLen(data[3]) {
				t.Fatalf("accepted length %d for flags %#x", len(data), data[3])
			}
			cc.validMAC2(data, addr, time.Unix(1, 0))
			if _, err := cc.reply(data, addr, time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
			if h, err := readInitiation(static, psk, data, newSeededReader(4)); err == nil {
				if h.in.flags != data[3] || h.in.hasPeerKey != (data[3]&flagIdentity != 0) {
					t.Fatalf("decoded flags %#x, peer key %v from %x", h.in.flags, h.in.hasPeerKey, data[:4])
				}
				if len(h.in.connectData) > MaxConnectDataSize || h.in.ext != (data[3]&flagExtended != 0) {
					t.Fatalf("decoded %d bytes of connect data, extended %v", len(h.in.connectData), h.in.ext)
				}
			}
		}

		// Round trip: encode the fuzzer's fields, decode them back.
		hello := helloParams{mtu: int(index % 2000), lanes: int(ts % 33)}
		if flags&flagExtended != 0 {
			hello.connectData = append([]byte{}, data[:min(len(data), MaxConnectDataSize)]...)
		}
		flags &= knownFlags
		if !Cipher(cipher).Valid() {
			return
		}
		c, err := newClientHandshake(srv.Public, Cipher(cipher), fecParams{}, index, time.Unix(0, int64(ts>>1)), newSeededReader(5), fuzzIdentity(t, flags), hello)
		if err != nil {
			t.Fatal(err)
		}
		pkt := c.initiation()
		var psk []byte
		mk := &mks[0]
		if flags&flagPSK != 0 {
			psk, mk = fuzzPSK, &mks[1]
		}
		if err := checkInitiation(pkt, mk); err != nil {
			t.Fatal(err)
		}
		if err := checkInitiation(pkt, &mks[1-flags&flagPSK>>1]); err == nil {
			t.Fatal("mac1 passed under the other psk setting")
		}
		h, err := readInitiation(static, psk, pkt, newSeededReader(6))
		if err != nil {
			t.Fatal(err)
		}
		in := h.in
		if hello.connectData != nil {
			flags |= flagExtended
		}
		if in.senderIndex != index || in.timestamp != ts>>1 || in.cipher != Cipher(cipher) || in.flags != flags ||
			in.peerMTU != hello.mtu || in.peerLanes != hello.lanes || !bytes.Equal(in.connectData, hello.connectData) {
			t.Fatalf("round trip: got %+v", in)
		}
		if want := fuzzKey(t, 2).Public; flags&flagIdentity != 0 && in.peerKey != want {
			t.Fatalf("round trip: peer key %v, want %v", in.peerKey, want)
		}
	})
}

func FuzzResponse(f *testing.F) {
	srv := fuzzKey(f, 1)
	newClient := func(tb testing.TB, flags byte) *clientHandshake {
		c, err := newClientHandshake(srv.Public, ChaCha20Poly1305, fecParams{}, 9, time.Unix(0, 1), newSeededReader(7), fuzzIdentity(tb, flags), helloParams{})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	for _, status := range []byte{statusOK, statusFECRefused, statusServerFull, statusClientDenied} {
		c := newClient(f, 0)
		h, err := readInitiation(serverStatic(srv), nil, c.initiation(), newSeededReader(8))
		if err != nil {
			f.Fatal(err)
		}
		resp, _, err := h.writeResponse(1234, status, fecParams{}, &[resetTokenSize]byte{9})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp[:], uint32(1234), []byte{9})
	}
	f.Fuzz(func(t *testing.T, data []byte, id uint32, token []byte) {
		c := newClient(t, 0)
		if r, err := c.consumeResponse(data); err == nil && (r.id == 0 || len(data) != responseSize) {
			t.Fatalf("accepted a response with session 0 or length %d", len(data))
		}

		// Round trip with a fresh pair.
		c = newClient(t, flagIdentity)
		h, err := readInitiation(serverStatic(srv), nil, c.initiation(), newSeededReader(8))
		if err != nil {
			t.Fatal(err)
		}
		var tok [resetTokenSize]byte
		copy(tok[:], token)
		resp, keys, err := h.writeResponse(id, statusOK, fecParams{}, &tok)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.consumeResponse(resp[:])
		if id == 0 {
			if err == nil {
				t.Fatal("session 0 accepted")
			}
			return
		}
		if err != nil || r.id != id || r.token != tok || r.keys.send != keys.recv || r.keys.recv != keys.send {
			t.Fatalf("round trip: %+v, %v", r, err)
		}
	})
}

func FuzzCookieReply(f *testing.F) {
	srv := fuzzKey(f, 1)
	c, err := newClientHandshake(srv.Public, ChaCha20Poly1305, fecParams{}, 9, time.Unix(0, 1), newSeededReader(9), clientIdentity{}, helloParams{})
	if err != nil {
		f.Fatal(err)
	}
	init := c.initiation()
	cc := newCookieChecker(srv.Public, newSeededReader(10))
	encKey := labelKey(cookieLabel, srv.Public)
	now := time.Unix(100, 0)
	r, err := cc.reply(init, netip.MustParseAddrPort("192.0.2.1:9"), now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r[:], []byte{192, 0, 2, 1}, uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, ip []byte, port uint16) {
		if cookie, err := openCookieReply(data, init, &encKey); err == nil {
			_ = cookie
			if len(data) != cookieReplySize {
				t.Fatalf("accepted length %d", len(data))
			}
		}
		var a [16]byte
		copy(a[:], ip)
		addr := netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port)
		reply, err := cc.reply(init, addr, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := openCookieReply(reply[:], init, &encKey)
		want, _ := cc.cookie(addr, now)
		if err != nil || got != want {
			t.Fatalf("round trip: %x != %x (%v)", got, want, err)
		}
		p := append([]byte(nil), init...)
		putMAC2(p, &got)
		if !cc.validMAC2(p, addr, now) {
			t.Fatal("mac2 from the cookie does not validate")
		}
	})
}

func FuzzReset(f *testing.F) {
	var r [resetSize]byte
	putReset(&r, 77, &[resetTokenSize]byte{1, 2, 3})
	f.Add(r[:], uint32(77), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte, id uint32, token []byte) {
		if gotID, tok, ok := parseReset(data); ok {
			var again [resetSize]byte
			putReset(&again, gotID, &tok)
			if !bytes.Equal(again[:], data) {
				t.Fatalf("parse/encode mismatch: %x vs %x", again, data)
			}
		}
		var tok [resetTokenSize]byte
		copy(tok[:], token)
		putReset(&r, id, &tok)
		gotID, gotTok, ok := parseReset(r[:])
		if !ok || gotID != id || !resetMatches(&gotTok, &tok) {
			t.Fatal("round trip")
		}
	})
}
