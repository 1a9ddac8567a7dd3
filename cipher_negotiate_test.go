package uxp

import (
	"context"
	"crypto/rand"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/wire"
)

// TestChooseSuite is the server's choice of cipher (negotiate.go), as a
// pure function: every combination of pins, AES hardware and old clients.
func TestChooseSuite(t *testing.T) {
	const aes = wire.SuiteAESHardware
	tests := []struct {
		name      string
		own       Cipher
		ownAES    bool
		header    Cipher
		offer     byte
		peerFlags byte
		want      Cipher
		ok        bool
	}{
		{"both have AES", 0, true, ChaCha20Poly1305, allSuites, aes, AES256GCM, true},
		{"client lacks AES", 0, true, ChaCha20Poly1305, allSuites, 0, ChaCha20Poly1305, true},
		{"server lacks AES", 0, false, ChaCha20Poly1305, allSuites, aes, ChaCha20Poly1305, true},
		{"neither has AES", 0, false, ChaCha20Poly1305, allSuites, 0, ChaCha20Poly1305, true},
		{"client pins salsa", 0, true, Salsa20Poly1305, suiteBit(Salsa20Poly1305), aes, Salsa20Poly1305, true},
		{"client pins chacha, both have AES", 0, true, ChaCha20Poly1305, suiteBit(ChaCha20Poly1305), aes, ChaCha20Poly1305, true},
		{"client pins AES without hardware", 0, false, AES256GCM, suiteBit(AES256GCM), 0, AES256GCM, true},
		{"server pins salsa", Salsa20Poly1305, true, ChaCha20Poly1305, allSuites, aes, Salsa20Poly1305, true},
		{"server pins AES, client lacks hardware", AES256GCM, false, ChaCha20Poly1305, allSuites, 0, AES256GCM, true},
		{"pins differ", AES256GCM, true, ChaCha20Poly1305, suiteBit(ChaCha20Poly1305), aes, AES256GCM, false},
		{"old client", 0, true, ChaCha20Poly1305, 0, 0, ChaCha20Poly1305, true},
		{"old client asks for AES", 0, false, AES256GCM, 0, 0, AES256GCM, true},
		{"old client, server pins another", Salsa20Poly1305, true, ChaCha20Poly1305, 0, 0, Salsa20Poly1305, false},
		{"old client, server pins the same", Salsa20Poly1305, true, Salsa20Poly1305, 0, 0, Salsa20Poly1305, true},
		{"unknown suites ignored", 0, true, ChaCha20Poly1305, allSuites | 0x80, aes, AES256GCM, true},
		{"single offer that is not the header", 0, true, ChaCha20Poly1305, suiteBit(Salsa20Poly1305), aes, ChaCha20Poly1305, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := chooseSuite(tt.own, tt.ownAES, tt.header, tt.offer, tt.peerFlags)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestCipherNegotiation runs the handshake for each combination over the
// simulated network: the session's cipher on both sides, or the
// *IncompatibleError naming the cipher when the two sides pinned different
// ones. hooks.aes pretends AES instructions are there or not; hooks.oldHello
// plays a peer from before negotiation, which must connect as it did.
func TestCipherNegotiation(t *testing.T) {
	withAES := Config{hooks: &testHooks{aes: aesPresent}}
	noAES := Config{hooks: &testHooks{aes: aesAbsent}}
	pin := func(c Config, ci Cipher) Config { c.Cipher = ci; return c }
	old := func(c Config) Config { c = *c.Clone(); hooksOf(&c).oldHello = true; return c }
	tests := []struct {
		name     string
		srv, cli Config
		want     Cipher
		wantErr  *IncompatibleError
	}{
		{name: "both have AES: AES-256-GCM", srv: withAES, cli: withAES, want: AES256GCM},
		{name: "client lacks AES: ChaCha20", srv: withAES, cli: noAES, want: ChaCha20Poly1305},
		{name: "server lacks AES: ChaCha20", srv: noAES, cli: withAES, want: ChaCha20Poly1305},
		{name: "client pins Salsa20", srv: withAES, cli: pin(withAES, Salsa20Poly1305), want: Salsa20Poly1305},
		{name: "server pins Salsa20", srv: pin(withAES, Salsa20Poly1305), cli: withAES, want: Salsa20Poly1305},
		{name: "client pins ChaCha20 on AES hardware", srv: withAES, cli: pin(withAES, ChaCha20Poly1305), want: ChaCha20Poly1305},
		{name: "server pins AES without client hardware", srv: pin(noAES, AES256GCM), cli: noAES, want: AES256GCM},
		{name: "pins differ", srv: pin(withAES, AES256GCM), cli: pin(withAES, ChaCha20Poly1305),
			wantErr: &IncompatibleError{Field: "Cipher", Local: int(ChaCha20Poly1305), Remote: int(AES256GCM)}},
		{name: "old client: its header's cipher", srv: withAES, cli: old(withAES), want: ChaCha20Poly1305},
		{name: "old client pinned to AES", srv: noAES, cli: old(pin(noAES, AES256GCM)), want: AES256GCM},
		{name: "old server: the client's header cipher", srv: old(withAES), cli: withAES, want: ChaCha20Poly1305},
		{name: "old server, client pins Salsa20", srv: old(withAES), cli: pin(withAES, Salsa20Poly1305), want: Salsa20Poly1305},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newSimPair(t, 3, &tt.srv, &tt.cli, false)
				err := p.cli.Start(context.Background())
				if tt.wantErr != nil {
					var ie *IncompatibleError
					require.ErrorAs(t, err, &ie)
					require.Equal(t, tt.wantErr, ie)
					require.Equal(t, uint64(1), p.srv.Stats().Handshake.RefusedIncompatible)
					return
				}
				require.NoError(t, err)
				c := p.cli.Conn()
				require.Equal(t, tt.want, c.Cipher())
				require.Equal(t, tt.want, c.Stats().Cipher)
				_, err = c.Write([]byte("hello"))
				require.NoError(t, err)
				time.Sleep(100 * time.Millisecond)
				conns, _, _ := p.srvH.counts()
				require.Equal(t, 1, conns)
				require.Equal(t, tt.want, p.srvH.conns[0].Cipher())
				_, msgs, _ := p.srvH.handler(0).snapshot()
				require.Equal(t, [][]byte{[]byte("hello")}, msgs, "data flows under the chosen cipher")
			})
		})
	}
}

// TestCipherOfferAuthenticated: the offer and the choice are inside Noise
// payloads, so an attacker who rewrites either (and fixes up mac1, which
// anyone can) makes the handshake fail instead of downgrading the cipher.
func TestCipherOfferAuthenticated(t *testing.T) {
	kp := testKeys(t)
	mk := mac1Key(kp.Public, nil)
	hello := helloParams{mtu: defaultMTUIPv4, lanes: 1, minMTU: minMTU, suites: allSuites, suiteFlags: wire.SuiteAESHardware}
	fresh := func() *clientHandshake {
		c, err := newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 1, time.Now(), rand.Reader, clientIdentity{}, hello)
		require.NoError(t, err)
		return c
	}
	// NK: the payload starts after the header and e.
	const payloadAt = wire.InitiationHeaderSize + wire.EphemeralSize
	for _, f := range []struct {
		name string
		off  int
	}{{"suites", 17}, {"suite flags", 18}} {
		off := f.off
		t.Run("rewritten "+f.name, func(t *testing.T) {
			c := fresh()
			pkt := append([]byte(nil), c.initiation()...)
			// Try to strip AES from the offer, or the hardware flag.
			pkt[payloadAt+off] ^= 0x08 | wire.SuiteAESHardware
			mac := computeMAC1(&mk, pkt)
			copy(pkt[mac1Offset(pkt):], mac[:])
			require.NoError(t, checkInitiation(pkt, &mk), "passes the cheap checks")
			_, _, _, err := respond(serverStatic(kp), pkt, 1, fecParams{}, rand.Reader)
			require.Error(t, err, "Noise rejects the rewritten offer")
		})
	}
	t.Run("genuine offer reaches the server", func(t *testing.T) {
		in, _, _, err := respond(serverStatic(kp), fresh().initiation(), 1, fecParams{}, rand.Reader)
		require.NoError(t, err)
		require.Equal(t, allSuites, in.suites)
		require.Equal(t, wire.SuiteAESHardware, in.suiteFlags)
	})
	t.Run("response suite", func(t *testing.T) {
		c := fresh()
		h, err := readInitiation(serverStatic(kp), nil, c.initiation(), rand.Reader)
		require.NoError(t, err)
		var token [resetTokenSize]byte
		resp, _, err := h.writeAnswer(9, statusOK, fecParams{}, &token, answerInfo{mtu: defaultMTUIPv4, lanes: 1, suite: byte(AES256GCM)})
		require.NoError(t, err)
		// The suite is payload byte 28, after the 12-byte header and e.
		bad := append([]byte(nil), resp...)
		bad[wire.ResponseHeaderSize+wire.EphemeralSize+28] ^= byte(AES256GCM) ^ byte(Salsa20Poly1305)
		_, err = c.consumeResponse(bad)
		require.Error(t, err, "Noise rejects the rewritten choice")
		r, err := c.consumeResponse(resp)
		require.NoError(t, err)
		require.Equal(t, byte(AES256GCM), r.suite)
	})
}
