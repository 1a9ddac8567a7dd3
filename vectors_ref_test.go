package uxp

import (
	"crypto/hmac"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// An independent implementation of what docs/protocol.md section 4
// specifies, written from the Noise specification (revision 34) and the
// RFCs rather than from handshake.go: the test vectors are checked against
// it, and it records the intermediate values (chaining key, handshake
// hash, cipher key) that flynn/noise does not expose. It uses only
// primitives: X25519, BLAKE2s, HMAC and ChaCha20-Poly1305.

func refBlake2s() hash.Hash {
	h, _ := blake2s.New256(nil)
	return h
}

func refHMAC(key []byte, data ...[]byte) []byte {
	m := hmac.New(refBlake2s, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// refHKDF is Noise's HKDF(chaining_key, input_key_material, n): n outputs
// of 32 bytes.
func refHKDF(ck, ikm []byte, n int) [][]byte {
	tk := refHMAC(ck, ikm)
	var out [][]byte
	prev := []byte{}
	for i := 1; i <= n; i++ {
		prev = refHMAC(tk, prev, []byte{byte(i)})
		out = append(out, prev)
	}
	return out
}

// refRFC5869 is HKDF-BLAKE2s as RFC 5869 defines it (extract, then
// expand to n bytes); an empty salt is 32 zero bytes.
func refRFC5869(salt, ikm []byte, info string, n int) []byte {
	if len(salt) == 0 {
		salt = make([]byte, 32)
	}
	prk := refHMAC(salt, ikm)
	var out, t []byte
	for i := byte(1); len(out) < n; i++ {
		t = refHMAC(prk, t, []byte(info), []byte{i})
		out = append(out, t...)
	}
	return out[:n]
}

func refBlake2s128(key []byte, data ...[]byte) []byte {
	h, err := blake2s.New128(key)
	if err != nil {
		panic(err) // test-only: key is 32 bytes
	}
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func refBlake2s256(data ...[]byte) []byte {
	h := refBlake2s()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func refX25519(priv, pub []byte) []byte {
	out, err := curve25519.X25519(priv, pub)
	if err != nil {
		panic(err) // test-only: fixed, valid keys
	}
	return out
}

func refPublic(priv []byte) []byte { return refX25519(priv, curve25519.Basepoint) }

// refChaChaSeal is RFC 8439 ChaCha20-Poly1305 with the nonce 0^4 ||
// le64(n), as both Noise and uxp's cipher 1 use it.
func refChaChaSeal(key []byte, n uint64, pt, ad []byte) []byte {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		panic(err)
	}
	var nonce [12]byte
	binary.LittleEndian.PutUint64(nonce[4:], n)
	return a.Seal(nil, nonce[:], pt, ad)
}

// refNoise is one side's Noise symmetric state. Each operation appends
// the values it produced to rec.
type refNoise struct {
	ck, h, k []byte
	n        uint64
	rec      *vectorRecorder
}

func newRefNoise(protocol string, prologue []byte, rec *vectorRecorder) *refNoise {
	r := &refNoise{rec: rec}
	if len(protocol) <= 32 {
		r.h = make([]byte, 32)
		copy(r.h, protocol)
	} else {
		r.h = refBlake2s256([]byte(protocol))
	}
	r.ck = append([]byte(nil), r.h...)
	rec.text("protocol_name", protocol)
	rec.hex("h0 = ck0", r.h)
	r.mixHash("prologue", prologue)
	return r
}

func (r *refNoise) mixHash(what string, data []byte) {
	r.h = refBlake2s256(r.h, data)
	r.rec.hex("h after MixHash("+what+")", r.h)
}

func (r *refNoise) mixKey(what string, ikm []byte) {
	out := refHKDF(r.ck, ikm, 2)
	r.ck, r.k, r.n = out[0], out[1], 0
	r.rec.hex("ck after MixKey("+what+")", r.ck)
	r.rec.hex("k after MixKey("+what+")", r.k)
}

func (r *refNoise) mixKeyAndHash(what string, ikm []byte) {
	out := refHKDF(r.ck, ikm, 3)
	r.ck = out[0]
	r.rec.hex("ck after MixKeyAndHash("+what+")", r.ck)
	r.mixHash("MixKeyAndHash temp_h", out[1])
	r.k, r.n = out[2], 0
	r.rec.hex("k after MixKeyAndHash("+what+")", r.k)
}

func (r *refNoise) encryptAndHash(what string, pt []byte) []byte {
	ct := pt
	if r.k != nil {
		ct = refChaChaSeal(r.k, r.n, pt, r.h)
		r.n++
	}
	r.mixHash(what, ct)
	return ct
}

func (r *refNoise) split() (c2s, s2c []byte) {
	out := refHKDF(r.ck, nil, 2)
	return out[0], out[1]
}

// refHandshake runs a whole uxp handshake (docs/protocol.md 3.1, 3.2,
// 4.1-4.3) from its inputs and returns the initiation, the response and
// the transport keys. Both sides share one transcript, so one symmetric
// state suffices.
type refHandshakeIn struct {
	serverPriv, clientPriv []byte // clientPriv nil: NK
	clientEph, serverEph   []byte
	psk                    []byte // nil: none
	cipher                 byte
	senderIndex, sessionID uint32
	timestamp              uint64
	fecReq, fecDecision    [4]byte
	resetToken             []byte
}

func refHandshake(in refHandshakeIn, rec *vectorRecorder) (initiation, response, c2s, s2c []byte) {
	serverPub := refPublic(in.serverPriv)
	ePub := refPublic(in.clientEph)
	var flags byte
	pattern := "NK"
	if in.clientPriv != nil {
		flags |= 0x01
		pattern = "IK"
	}
	if in.psk != nil {
		flags |= 0x02
		pattern += "psk2"
	}
	hdr := []byte{1, 1, in.cipher, flags, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(hdr[4:], in.senderIndex)
	prologue := append([]byte("uxp/1 Noise_NK"), hdr...)
	rec.hex("prologue", prologue)

	r := newRefNoise("Noise_"+pattern+"_25519_ChaChaPoly_BLAKE2s", prologue, rec)
	r.mixHash("server static public key (pre-message)", serverPub)

	// Message 1: -> e, es [, s, ss]
	msg := append([]byte(nil), ePub...)
	r.mixHash("e", ePub)
	if in.psk != nil {
		r.mixKey("e (psk mode)", ePub)
	}
	r.mixKey("es", refX25519(in.clientEph, serverPub))
	if in.clientPriv != nil {
		msg = append(msg, r.encryptAndHash("encrypted s", refPublic(in.clientPriv))...)
		r.mixKey("ss", refX25519(in.clientPriv, serverPub))
	}
	payload := make([]byte, 24)
	binary.LittleEndian.PutUint64(payload, in.timestamp)
	copy(payload[8:12], in.fecReq[:])
	rec.hex("initiation payload", payload)
	msg = append(msg, r.encryptAndHash("encrypted initiation payload", payload)...)
	initiation = append(append([]byte(nil), hdr...), msg...)
	mac1Key := refBlake2s256([]byte("mac1----"), serverPub, in.psk) // section 4.3: the psk, when there is one
	rec.hex("mac1 key", mac1Key)
	mac1 := refBlake2s128(mac1Key, initiation)
	rec.hex("mac1", mac1)
	initiation = append(initiation, mac1...)
	initiation = append(initiation, make([]byte, 16)...) // mac2: no cookie

	// Message 2: <- e, ee [, se] [, psk]
	rePub := refPublic(in.serverEph)
	resp := []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(resp[4:], in.sessionID)
	binary.LittleEndian.PutUint32(resp[8:], in.senderIndex)
	resp = append(resp, rePub...)
	r.mixHash("server e", rePub)
	if in.psk != nil {
		r.mixKey("server e (psk mode)", rePub)
	}
	r.mixKey("ee", refX25519(in.serverEph, ePub))
	if in.clientPriv != nil {
		r.mixKey("se", refX25519(in.serverEph, refPublic(in.clientPriv)))
	}
	if in.psk != nil {
		r.mixKeyAndHash("psk", in.psk)
	}
	rp := make([]byte, 32)
	binary.LittleEndian.PutUint32(rp[4:], in.sessionID)
	copy(rp[8:12], in.fecDecision[:])
	copy(rp[12:28], in.resetToken)
	rec.hex("response payload", rp)
	resp = append(resp, r.encryptAndHash("encrypted response payload", rp)...)
	c2s, s2c = r.split()
	rec.hex("handshake hash (final h)", r.h)
	return initiation, resp, c2s, s2c
}

func refXChaChaSeal(key, nonce, pt, ad []byte) []byte {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err)
	}
	return a.Seal(nil, nonce, pt, ad)
}
