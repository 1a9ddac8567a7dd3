package uxp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"

	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/internal/replay"
	"github.com/uxp-go/uxp/internal/wire"
)

// Wire test vectors (testdata/vectors, described in its README.md and in
// docs/protocol.md section 11). Each file is produced by running the
// production code with fixed keys, ephemerals, nonces and secrets, checked
// against the independent implementation in vectors_ref_test.go (and, for
// FEC, vectors_fec_test.go), and then compared byte for byte with the
// checked-in file. Regenerate them, after a deliberate wire change only,
// with
//
//	go test -run TestVectors -update .

var updateVectors = flag.Bool("update", false, "rewrite testdata/vectors from the code")

const vectorDir = "testdata/vectors"

// vectorFile is the JSON form of one vector file.
type vectorFile struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Values      []vectorValue `json:"values"`
}

// vectorValue is one named value: bytes as hex, a string, or a number.
type vectorValue struct {
	Name string  `json:"name"`
	Hex  *string `json:"hex,omitempty"`
	Text *string `json:"text,omitempty"`
	Uint *uint64 `json:"uint,omitempty"`
}

// vectorRecorder collects the values of one file, in order.
type vectorRecorder struct{ values []vectorValue }

func (r *vectorRecorder) hex(name string, b []byte) {
	s := hex.EncodeToString(b)
	r.values = append(r.values, vectorValue{Name: name, Hex: &s})
}

func (r *vectorRecorder) text(name, s string) {
	r.values = append(r.values, vectorValue{Name: name, Text: &s})
}

func (r *vectorRecorder) uint(name string, v uint64) {
	r.values = append(r.values, vectorValue{Name: name, Uint: &v})
}

// vecKey is a fixed 32-byte input, named by label: BLAKE2s-256 of
// "uxp test vector: " || label. Nothing about it is secret.
func vecKey(label string) []byte { return refBlake2s256([]byte("uxp test vector: " + label)) }

// vecTime is the timestamp the handshake vectors carry.
var vecTime = time.Unix(1_700_000_000, 123_456_789)

type vectorGen struct {
	file string
	gen  func(t testing.TB) vectorFile
}

var vectorGens = []vectorGen{
	{"handshake-nk.json", func(t testing.TB) vectorFile { return genHandshake(t, false, false) }},
	{"handshake-ik.json", func(t testing.TB) vectorFile { return genHandshake(t, true, false) }},
	{"handshake-ikpsk2.json", func(t testing.TB) vectorFile { return genHandshake(t, true, true) }},
	{"transport.json", genTransport},
	{"rekey.json", genRekey},
	{"cookie-reply.json", genCookieReply},
	{"stateless-reset.json", genReset},
	{"fec.json", genFEC},
}

// TestVectors regenerates every vector file in memory (checking it against
// the independent implementation on the way) and fails if a single byte
// differs from testdata/vectors. With -update it rewrites the files.
func TestVectors(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range vectorGens {
		t.Run(g.file, func(t *testing.T) {
			vf := g.gen(t)
			names := map[string]bool{}
			for _, v := range vf.Values {
				require.False(t, names[v.Name], "duplicate value name %q", v.Name)
				names[v.Name] = true
			}
			want, err := json.MarshalIndent(vf, "", "  ")
			require.NoError(t, err)
			want = append(want, '\n')
			path := filepath.Join(vectorDir, g.file)
			if *updateVectors {
				require.NoError(t, os.MkdirAll(vectorDir, 0o755))
				require.NoError(t, os.WriteFile(path, want, 0o644))
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err, "regenerate with: go test -run TestVectors -update .")
			if !bytes.Equal(got, want) {
				var old vectorFile
				_ = json.Unmarshal(got, &old)
				t.Fatalf("%s differs from what the code produces (first difference: %s); after a deliberate wire change regenerate with: go test -run TestVectors -update .",
					path, firstVectorDiff(old, vf))
			}
			seen[g.file] = true
		})
	}
	if !t.Failed() {
		entries, err := os.ReadDir(vectorDir)
		require.NoError(t, err)
		for _, e := range entries {
			if filepath.Ext(e.Name()) == ".json" {
				require.True(t, seen[e.Name()], "%s has no generator", e.Name())
			}
		}
	}
}

func firstVectorDiff(a, b vectorFile) string {
	if a.Name != b.Name || a.Description != b.Description {
		return "name or description"
	}
	for i := range min(len(a.Values), len(b.Values)) {
		x, _ := json.Marshal(a.Values[i])
		y, _ := json.Marshal(b.Values[i])
		if !bytes.Equal(x, y) {
			return "value " + strconv.Quote(b.Values[i].Name)
		}
	}
	if len(a.Values) != len(b.Values) {
		return "number of values"
	}
	return "formatting"
}

// vecHandshake is a handshake run by the production code; genHandshake
// records it and transport and rekey vectors build on its keys.
type vecHandshake struct {
	initiation, response []byte
	c2s, s2c             [32]byte
	sessionID            uint32
}

func runVecHandshake(t testing.TB, ik, psk bool, rec *vectorRecorder) vecHandshake {
	t.Helper()
	if rec == nil {
		rec = &vectorRecorder{}
	}
	serverPriv := vecKey("server static private key")
	serverPub := refPublic(serverPriv)
	in := refHandshakeIn{
		serverPriv:  serverPriv,
		clientEph:   vecKey("client ephemeral private key"),
		serverEph:   vecKey("server ephemeral private key"),
		cipher:      byte(ChaCha20Poly1305),
		senderIndex: 0x04030201,
		sessionID:   0x0d0c0b0a,
		timestamp:   uint64(vecTime.UnixNano()),
	}
	req := fecParams{}
	if ik {
		in.clientPriv = vecKey("client static private key")
		// An IK client also asks for FEC: RS(10,3), adaptive up to 6.
		req = fecParams{data: 10, parity: 3, maxParity: 6, adaptive: true}
	}
	if psk {
		in.psk = vecKey("pre-shared key")
	}
	req.put(in.fecReq[:])
	in.fecDecision = in.fecReq // the server's policy allows the request
	rk := resetKey(PrivateKey(serverPriv))
	token := resetToken(&rk, in.sessionID)
	in.resetToken = token[:]

	rec.hex("server static private key", serverPriv)
	rec.hex("server static public key", serverPub)
	if ik {
		rec.hex("client static private key", in.clientPriv)
		rec.hex("client static public key", refPublic(in.clientPriv))
	}
	if psk {
		rec.hex("pre-shared key", in.psk)
	}
	rec.hex("client ephemeral private key", in.clientEph)
	rec.hex("client ephemeral public key", refPublic(in.clientEph))
	rec.hex("server ephemeral private key", in.serverEph)
	rec.hex("server ephemeral public key", refPublic(in.serverEph))
	rec.uint("cipher", uint64(in.cipher))
	rec.uint("sender index", uint64(in.senderIndex))
	rec.uint("session id", uint64(in.sessionID))
	rec.uint("timestamp (Unix ns)", in.timestamp)
	rec.hex("FEC request", in.fecReq[:])
	rec.hex("FEC decision", in.fecDecision[:])
	rec.hex("stateless reset token (section 4.9)", token[:])

	// Production code, with the ephemerals injected as its random source.
	static, err := newStaticKey(PrivateKey(serverPriv))
	require.NoError(t, err)
	id := clientIdentity{psk: in.psk}
	if ik {
		id.static = &noise.DHKey{Private: in.clientPriv, Public: refPublic(in.clientPriv)}
	}
	ch, err := newClientHandshake(PublicKey(serverPub), ChaCha20Poly1305, req, in.senderIndex, vecTime, bytes.NewReader(in.clientEph), id, helloParams{})
	require.NoError(t, err)
	init := bytes.Clone(ch.initiation())
	mk := mac1Key(PublicKey(serverPub), in.psk)
	require.NoError(t, checkInitiation(init, &mk))
	sh, err := readInitiation(static, in.psk, init, bytes.NewReader(in.serverEph))
	require.NoError(t, err)
	require.Equal(t, in.timestamp, sh.in.timestamp)
	require.Equal(t, req, sh.in.fecReq)
	require.Equal(t, ik, sh.in.hasPeerKey)
	resp, skeys, err := sh.writeResponse(in.sessionID, statusOK, req, &token)
	require.NoError(t, err)
	res, err := ch.consumeResponse(resp[:])
	require.NoError(t, err)
	require.Equal(t, in.sessionID, res.id)
	require.Equal(t, token, res.token)
	require.Equal(t, res.keys.send, skeys.recv)
	require.Equal(t, res.keys.recv, skeys.send)

	// The independent implementation, which also records every
	// intermediate value, must agree on every byte.
	refInit, refResp, c2s, s2c := refHandshake(in, rec)
	require.Equal(t, hex.EncodeToString(refInit), hex.EncodeToString(init), "initiation")
	require.Equal(t, hex.EncodeToString(refResp), hex.EncodeToString(resp[:]), "response")
	require.Equal(t, c2s, res.keys.send[:], "client to server key")
	require.Equal(t, s2c, res.keys.recv[:], "server to client key")

	rec.hex("initiation (message type 1)", init)
	rec.hex("response (message type 2)", resp[:])
	rec.hex("transport key client to server (Split k1)", c2s)
	rec.hex("transport key server to client (Split k2)", s2c)
	return vecHandshake{initiation: init, response: resp[:], c2s: res.keys.send, s2c: res.keys.recv, sessionID: in.sessionID}
}

func genHandshake(t testing.TB, ik, psk bool) vectorFile {
	rec := &vectorRecorder{}
	runVecHandshake(t, ik, psk, rec)
	name, desc := "handshake-nk", "A complete Noise NK handshake (anonymous client, no FEC): inputs, every intermediate chaining key (ck), handshake hash (h) and cipher key (k) in transcript order, both messages and the transport keys. docs/protocol.md sections 3.1, 3.2 and 4.1-4.4."
	switch {
	case ik && psk:
		name, desc = "handshake-ikpsk2", "A complete Noise IKpsk2 handshake (client static key and pre-shared key, FEC RS(10,3) adaptive up to 6): inputs, every intermediate value in transcript order, both messages and the transport keys. docs/protocol.md sections 3.1, 3.2 and 4.1-4.4."
	case ik:
		name, desc = "handshake-ik", "A complete Noise IK handshake (client static key, FEC RS(10,3) adaptive up to 6): inputs, every intermediate value in transcript order, both messages and the transport keys. docs/protocol.md sections 3.1, 3.2 and 4.1-4.4."
	}
	return vectorFile{Name: name, Description: desc, Values: rec.values}
}

// vecSeal seals one transport packet with the production code and checks
// it against the reference where there is one (cipher 1) and by opening
// it.
func vecSeal(t testing.TB, cipher Cipher, key *[32]byte, receiver uint32, ctr uint64, phase uint8, pt []byte) []byte {
	t.Helper()
	a, err := ucrypto.NewAEAD(cipher, key)
	require.NoError(t, err)
	b := make([]byte, transportHeaderSize, transportHeaderSize+len(pt)+tagSize)
	putTransportHeader(b, receiver, ctr, phase)
	pkt := a.Seal(b, ctr, pt, b[:transportHeaderSize])
	switch cipher {
	case ChaCha20Poly1305:
		want := append(bytes.Clone(b[:transportHeaderSize]), refChaChaSeal(key[:], ctr, pt, b[:transportHeaderSize])...)
		require.Equal(t, want, pkt)
	case ucrypto.AES256GCM:
		want := append(bytes.Clone(b[:transportHeaderSize]), refAESGCMSeal(key[:], ctr, pt, b[:transportHeaderSize])...)
		require.Equal(t, want, pkt)
	}
	h, ok := parseTransportHeader(pkt)
	require.True(t, ok)
	require.Equal(t, receiver, h.receiver())
	// The header carries the counter's low 31 bits; a receiver expecting
	// this counter rebuilds it (protocol.md §4.6).
	require.Equal(t, ctr, wire.ExpandCounter(ctr, wire.TransportHeader(pkt).CounterLow()))
	got, err := a.Open(nil, ctr, pkt[transportHeaderSize:], pkt[:transportHeaderSize])
	require.NoError(t, err)
	require.Equal(t, pt, got)
	return pkt
}

func genTransport(t testing.TB) vectorFile {
	hs := runVecHandshake(t, false, false, nil)
	rec := &vectorRecorder{}
	rec.hex("transport key client to server", hs.c2s[:])
	rec.hex("transport key server to client", hs.s2c[:])
	rec.uint("session id (receiver)", uint64(hs.sessionID))
	// A datagram frame (type 11) and a close frame (type 4: code
	// CloseNormal, one lane that took 3 messages, reason "bye").
	datagram := append([]byte{frameDatagram}, "uxp test vector"...)
	closeFrame := append([]byte{frameClose, 0, 0, 1, 3, 0, 0, 0}, "bye"...)
	rec.hex("plaintext A: datagram frame", datagram)
	rec.hex("plaintext B: close frame", closeFrame)
	for _, cipher := range []Cipher{ChaCha20Poly1305, Salsa20Poly1305, ucrypto.AES256GCM} {
		for _, ctr := range []uint64{0, 1, 1 << 32, replay.RejectAfter - 1} {
			pkt := vecSeal(t, cipher, &hs.c2s, hs.sessionID, ctr, 0, datagram)
			rec.hex(cipher.String()+" client to server, counter "+strconv.FormatUint(ctr, 10)+", plaintext A", pkt)
		}
		pkt := vecSeal(t, cipher, &hs.s2c, hs.sessionID, 7, 0, closeFrame)
		rec.hex(cipher.String()+" server to client, counter 7, plaintext B", pkt)
	}
	return vectorFile{
		Name:        "transport",
		Description: "Transport packets (type 4) under the keys of handshake-nk.json, for each cipher at several counters, key phase 0. docs/protocol.md sections 3.3, 3.4, 4.5 and 4.6. The keys here are the NK handshake's even for ciphers 2 and 3: the cipher byte selects only the transport AEAD.",
		Values:      rec.values,
	}
}

func genRekey(t testing.TB) vectorFile {
	hs := runVecHandshake(t, false, false, nil)
	rec := &vectorRecorder{}
	rec.hex("generation 0 key client to server", hs.c2s[:])
	rec.hex("generation 0 key server to client", hs.s2c[:])
	rec.uint("session id (receiver)", uint64(hs.sessionID))
	root, err := rekeyRoot(&hs.c2s, &hs.s2c)
	require.NoError(t, err)
	require.Equal(t, refRFC5869(nil, append(hs.c2s[:], hs.s2c[:]...), rekeyRootLabel, 32), root[:])
	rec.hex("root 0 = HKDF-BLAKE2s(salt none, c2s0 || s2c0, \"uxp/1 rekey root\")", root[:])

	ei, er := vecKey("rekey initiator ephemeral"), vecKey("rekey responder ephemeral")
	rec.hex("initiator (client) ephemeral private key", ei)
	rec.hex("initiator (client) ephemeral public key", refPublic(ei))
	rec.hex("responder (server) ephemeral private key", er)
	rec.hex("responder (server) ephemeral public key", refPublic(er))

	var body [rekeyBodySize]byte
	putRekeyFrame(body[:], rekeyFrame{kind: rekeyInit, epoch: 1, pub: [32]byte(refPublic(ei))})
	initFrame := append([]byte{frameRekey}, body[:]...)
	rec.hex("rekey init frame (type 7, kind 0, epoch 1)", initFrame)
	rec.hex("rekey init packet, client to server, generation 0, counter 5", vecSeal(t, ChaCha20Poly1305, &hs.c2s, hs.sessionID, 5, 0, initFrame))
	putRekeyFrame(body[:], rekeyFrame{kind: rekeyAck, epoch: 1, pub: [32]byte(refPublic(er))})
	ackFrame := append([]byte{frameRekey}, body[:]...)
	rec.hex("rekey ack frame (type 7, kind 1, epoch 1)", ackFrame)
	rec.hex("rekey ack packet, server to client, generation 0, counter 3", vecSeal(t, ChaCha20Poly1305, &hs.s2c, hs.sessionID, 3, 0, ackFrame))

	dh := refX25519(ei, refPublic(er))
	require.Equal(t, dh, refX25519(er, refPublic(ei)))
	rec.hex("shared secret X25519(e_i, e_r)", dh)
	next, c2s, s2c, err := rekeyDerive(&root, 1, dh)
	require.NoError(t, err)
	info := binary.LittleEndian.AppendUint32([]byte(rekeyLabel), 1)
	ref := refRFC5869(root[:], dh, string(info), 96)
	require.Equal(t, ref, append(append(next[:], c2s[:]...), s2c[:]...))
	rec.hex("HKDF info \"uxp/1 rekey\" || u32 epoch", info)
	rec.hex("root 1", next[:])
	rec.hex("generation 1 key client to server", c2s[:])
	rec.hex("generation 1 key server to client", s2c[:])
	datagram := append([]byte{frameDatagram}, "after rekey"...)
	rec.hex("plaintext: datagram frame", datagram)
	rec.hex("first packet under generation 1, client to server, key phase 1, counter 6", vecSeal(t, ChaCha20Poly1305, &c2s, hs.sessionID, 6, 1, datagram))
	return vectorFile{
		Name:        "rekey",
		Description: "A rekey to epoch 1 after the handshake of handshake-nk.json (cipher 1): the root, both rekey frames as sealed under generation 0, the derivation, and the first packet under generation 1 (key-phase bit set; the counter runs on). docs/protocol.md section 5.5.",
		Values:      rec.values,
	}
}

// vecRand is a random source that must be read in full, in order.
type vecRand struct{ parts [][]byte }

func (r *vecRand) Read(p []byte) (int, error) {
	if len(r.parts) == 0 || len(p) != len(r.parts[0]) {
		panic("vecRand: unexpected read") // test-only: the code changed its reads
	}
	copy(p, r.parts[0])
	r.parts = r.parts[1:]
	return len(p), nil
}

func genCookieReply(t testing.TB) vectorFile {
	hs := runVecHandshake(t, false, false, nil)
	serverPub := PublicKey(refPublic(vecKey("server static private key")))
	secret := vecKey("cookie secret")
	nonce := vecKey("cookie nonce")[:cookieNonceSize]
	from := netip.MustParseAddrPort("192.0.2.7:40000")
	rec := &vectorRecorder{}
	rec.hex("server static public key", serverPub[:])
	rec.hex("initiation (from handshake-nk.json)", hs.initiation)
	rec.text("source address", from.String())
	rec.hex("cookie secret", secret)
	rec.hex("nonce", nonce)

	cc := newCookieChecker(serverPub, &vecRand{parts: [][]byte{secret, nonce}})
	now := vecTime
	reply, err := cc.reply(hs.initiation, from, now)
	require.NoError(t, err)

	// Reference: section 4.8.
	ip := from.Addr().As16()
	addr := binary.LittleEndian.AppendUint16(ip[:], from.Port())
	rec.hex("IP (16, IPv4-mapped) || port (u16 LE)", addr)
	cookie := refBlake2s128(secret, addr)
	rec.hex("cookie = BLAKE2s-128(secret, address)", cookie)
	encKey := refBlake2s256([]byte(cookieLabel), serverPub[:])
	rec.hex("cookie key = BLAKE2s-256(\"cookie--\" || server public key)", encKey)
	mac1 := hs.initiation[len(hs.initiation)-32 : len(hs.initiation)-16]
	want := []byte{msgCookieReply, 0, 0, 0}
	want = append(want, hs.initiation[4:8]...)
	want = append(want, nonce...)
	want = append(want, refXChaChaSeal(encKey, nonce, cookie, mac1)...)
	require.Equal(t, want, reply[:])
	rec.hex("cookie reply (message type 3)", reply[:])

	// The client opens it and puts mac2 on its next initiation, which the
	// server (still on the same secret) accepts.
	ek := labelKey(cookieLabel, serverPub)
	got, err := openCookieReply(reply[:], hs.initiation, &ek)
	require.NoError(t, err)
	require.Equal(t, cookie, got[:])
	with := bytes.Clone(hs.initiation)
	putMAC2(with, &got)
	mac2 := refBlake2s128(cookie, with[:len(with)-16])
	require.Equal(t, mac2, with[len(with)-16:])
	require.True(t, cc.validMAC2(with, from, now))
	rec.hex("mac2 = BLAKE2s-128(cookie, initiation[0:len-16])", mac2)
	rec.hex("initiation with mac2", with)
	return vectorFile{
		Name:        "cookie-reply",
		Description: "A cookie reply to the initiation of handshake-nk.json from 192.0.2.7:40000, and the initiation resent with mac2. docs/protocol.md sections 3.6 and 4.8.",
		Values:      rec.values,
	}
}

func genReset(t testing.TB) vectorFile {
	serverPriv := vecKey("server static private key")
	rec := &vectorRecorder{}
	rec.hex("server static private key", serverPriv)
	const id = 0x0d0c0b0a
	rec.uint("session id", id)
	key := resetKey(PrivateKey(serverPriv))
	require.Equal(t, refBlake2s256([]byte(resetLabel), serverPriv), key[:])
	rec.hex("reset key = BLAKE2s-256(\"reset---\" || server static private key)", key[:])
	tok := resetToken(&key, id)
	require.Equal(t, refBlake2s128(key[:], []byte{0x0a, 0x0b, 0x0c, 0x0d}), tok[:])
	rec.hex("token = BLAKE2s-128(reset key, le32(session id))", tok[:])
	var b [resetSize]byte
	putReset(&b, id, &tok)
	want := append([]byte{msgReset, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d}, tok[:]...)
	require.Equal(t, want, b[:])
	gotID, gotTok, ok := parseReset(b[:])
	require.True(t, ok)
	require.Equal(t, uint32(id), gotID)
	require.Equal(t, tok, gotTok)
	rec.hex("stateless reset (message type 5)", b[:])
	return vectorFile{
		Name:        "stateless-reset",
		Description: "The stateless reset a server sends for a transport packet to session 0x0d0c0b0a; the token is the one handshake-nk.json's response carries. docs/protocol.md sections 3.7 and 4.9.",
		Values:      rec.values,
	}
}
