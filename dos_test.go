package uxp

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// floodInitiation returns an initiation that passes every cheap check
// (length, version, a valid mac1) but carries a random ephemeral key, so
// the server cannot answer it from its half-open table: without the cookie
// defence each one costs a Diffie-Hellman. It costs the attacker only a
// BLAKE2s.
func floodInitiation(t testing.TB, base []byte, server PublicKey, i int) []byte {
	t.Helper()
	p := append([]byte(nil), base...)
	_, err := rand.Read(p[8 : 8+noiseKeySize])
	require.NoError(t, err)
	p[4], p[5] = byte(i), byte(i>>8)
	mk := mac1Key(server, nil)
	mac := computeMAC1(&mk, p)
	copy(p[mac1Offset(p):], mac[:])
	return p
}

func spoofedAddr(i int) *net.UDPAddr {
	return &net.UDPAddr{IP: net.IPv4(10, 9, byte(i>>8), byte(i)), Port: 1024 + i%5000}
}

// TestHandshakeFloodCookieMode floods the server with initiations that have
// a valid mac1, from spoofed sources, far faster than it could do their
// Diffie-Hellman. The server must go into cookie mode, keep the number of
// Diffie-Hellman operations per second bounded (counted, not timed), and a
// legitimate client must still connect within its handshake timeout.
func TestHandshakeFloodCookieMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			burst    = 300
			gap      = 10 * time.Millisecond
			duration = 2 * time.Second
			floodPPS = burst * int(time.Second/gap) // 30,000 initiations a second
			// The bound: at most about one queue threshold's worth of
			// Diffie-Hellman per under-load period, far below the flood.
			maxDHPerSecond = 2 * underLoadQueueLen
		)
		p := newSimPair(t, 3, nil, nil, false)
		p.net.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond}) // the legitimate client's path
		base := testInitiation(t, p.keys.Public, clientIdentity{}).initiation()
		flood := make([][]byte, 256)
		for i := range flood {
			flood[i] = floodInitiation(t, base, p.keys.Public, i)
		}
		srvAddr := p.srvPC.LocalAddr()
		stop := time.Now().Add(duration)
		floodDone := make(chan struct{})
		go func() {
			defer close(floodDone)
			for n := 0; time.Now().Before(stop); n++ {
				for i := range burst {
					k := n*burst + i
					p.net.Inject(spoofedAddr(k%20000), srvAddr, flood[k%len(flood)])
				}
				time.Sleep(gap)
			}
		}()

		// Sample the Diffie-Hellman count every (virtual) second.
		var perSecond []uint64
		sampleDone := make(chan struct{})
		go func() {
			defer close(sampleDone)
			prev := uint64(0)
			for range int(duration / time.Second) {
				time.Sleep(time.Second)
				cur := p.srv.Stats().Handshake.Processed
				perSecond = append(perSecond, cur-prev)
				prev = cur
			}
		}()

		time.Sleep(300 * time.Millisecond) // the flood is on
		require.Greater(t, p.srv.Stats().Handshake.CookiesSent, uint64(0), "the server is in cookie mode")
		start := time.Now()
		require.NoError(t, p.cli.Start(context.Background()), "a legitimate client connects during the flood")
		took := time.Since(start)
		require.Less(t, took, time.Second, "one cookie round trip, not a handshake timeout (virtual time; 40 ms measured)")
		require.Greater(t, p.cli.Stats().Handshake.CookiesReceived, uint64(0), "it went through the cookie exchange")

		<-floodDone
		<-sampleDone
		st := p.srv.Stats()
		t.Logf("flood %d initiations/s; DH per second %v; cookies sent %d; client took %v", floodPPS, perSecond, st.Handshake.CookiesSent, took)
		require.Len(t, perSecond, 2, "both seconds of the flood were sampled")
		for i, n := range perSecond {
			require.LessOrEqual(t, n, uint64(maxDHPerSecond), "second %d: Diffie-Hellman operations must stay bounded", i)
		}
		require.Greater(t, st.Handshake.CookiesSent, uint64(floodPPS), "the flood was answered with cookies, not DH")

		// The session works.
		_, err := p.cli.Conn().Write([]byte("hello"))
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
		conns, _, _ := p.srvH.counts()
		require.Equal(t, 1, conns)
	})
}

// TestSpoofedSourceNoAmplification sends, from a spoofed victim address,
// everything that makes the server answer an unvalidated address: valid
// initiations (NK and IK, new and retransmitted), initiations with a
// random ephemeral key, and transport packets for unknown sessions
// (stateless resets), with and without load. The victim must receive at
// most as many bytes as were sent in its name.
func TestSpoofedSourceNoAmplification(t *testing.T) {
	for _, load := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			p := newSimPair(t, 4, nil, nil, false)
			p.srv.forceLoad.Store(load)
			victim, err := p.net.Listen("10.0.0.66:7000")
			require.NoError(t, err)
			srvAddr := p.srvPC.LocalAddr()
			sent := 0
			inject := func(b []byte) {
				p.net.Inject(victim.LocalAddr(), srvAddr, b)
				sent += len(b)
			}
			for range 10 {
				nk := testInitiation(t, p.keys.Public, clientIdentity{}).initiation()
				ik := testInitiation(t, p.keys.Public, clientIdentity{static: testStatic(t)}).initiation()
				for range 3 { // retransmissions too
					inject(nk)
					inject(ik)
				}
				inject(floodInitiation(t, nk, p.keys.Public, 1))
				for _, size := range []int{minTransportSize, 200, 1400} {
					pkt := make([]byte, size)
					putTransportHeader(pkt, 12345, 0, 0)
					inject(pkt)
				}
				time.Sleep(time.Second)
			}
			got, packets := drainBytes(t, victim)
			t.Logf("load=%v: victim received %d bytes in %d datagrams for %d bytes sent in its name", load, got, packets, sent)
			require.Greater(t, packets, 0, "the server did answer")
			require.LessOrEqual(t, got, sent, "never more than 1x")
			if load {
				require.Greater(t, p.srv.Stats().Handshake.CookiesSent, uint64(0))
			}
		})
	}
}

// TestSpoofedFloodKeepsClientBudget floods the server, under load, with
// initiations spoofing the legitimate client's own IP address and port. They
// carry a valid mac1 but no mac2, so they only get cookie replies (which the
// client drops: they answer initiations it did not send) and never reach the
// per-source rate limiter: the client still connects at once.
func TestSpoofedFloodKeepsClientBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 9, nil, nil, false)
		p.srv.forceLoad.Store(true)
		base := testInitiation(t, p.keys.Public, clientIdentity{}).initiation()
		for i := range 500 {
			p.net.Inject(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), floodInitiation(t, base, p.keys.Public, i))
		}
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, p.cli.Start(context.Background()))
		st := p.srv.Stats()
		require.Zero(t, st.Handshake.RateLimited, "the spoofed flood spent none of the client's budget")
		require.GreaterOrEqual(t, st.Handshake.CookiesSent, uint64(500))
		require.Equal(t, uint64(1), st.Handshake.Processed, "only the client's own initiation reached Diffie-Hellman")
		require.GreaterOrEqual(t, p.cli.Stats().Drops.Malformed, uint64(500), "cookie replies to initiations the client did not send are dropped")
	})
}
