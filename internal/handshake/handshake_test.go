package handshake

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/testutil"
	"github.com/uxp-go/uxp/internal/wire"
)

var newSeededReader = testutil.SeededReader

func randomKey(t testing.TB) [32]byte {
	t.Helper()
	var k [32]byte
	_, err := rand.Read(k[:])
	require.NoError(t, err)
	return k
}

// testInitiation stands in for an initiation of size bytes to server: what
// the defences look at is its sender index (bytes 4..8) and its MACs, and
// mac1 is set as a client sets it.
func testInitiation(t testing.TB, server [32]byte, size int) []byte {
	t.Helper()
	p := make([]byte, size)
	_, err := rand.Read(p[:MAC1Offset(p)])
	require.NoError(t, err)
	p[0] = wire.MsgInitiation
	k := MAC1Key(server, nil)
	mac := ComputeMAC1(&k, p)
	copy(p[MAC1Offset(p):], mac[:])
	return p
}

func TestCookieReply(t *testing.T) {
	pub := randomKey(t)
	t0 := time.Unix(5000, 0)
	cc := NewCookieChecker(pub, newSeededReader(1))
	encKey := LabelKey(CookieLabel, pub)
	addr := netip.MustParseAddrPort("192.0.2.7:4000")
	for _, size := range []int{112, 160} { // NK and IK
		init := testInitiation(t, pub, size)
		require.False(t, cc.ValidMAC2(init, addr, t0), "no cookie handed out yet")

		reply, err := cc.Reply(init, addr, t0)
		require.NoError(t, err)
		require.Less(t, len(reply), len(init), "a cookie reply must not amplify")
		cookie, err := OpenCookieReply(reply[:], init, &encKey)
		require.NoError(t, err)

		mac1 := append([]byte(nil), init[MAC1Offset(init):MAC2Offset(init)]...)
		PutMAC2(init, &cookie)
		require.Equal(t, mac1, init[MAC1Offset(init):MAC2Offset(init)], "mac2 does not disturb mac1")
		require.True(t, cc.ValidMAC2(init, addr, t0.Add(time.Minute)))
		require.False(t, cc.ValidMAC2(init, netip.MustParseAddrPort("192.0.2.7:4001"), t0), "cookie is bound to the port")
		require.False(t, cc.ValidMAC2(init, netip.MustParseAddrPort("192.0.2.8:4000"), t0), "cookie is bound to the IP")
		require.False(t, cc.ValidMAC2(init, addr, t0.Add(CookieSecretLife)), "the secret rotates after two minutes")

		// The reply is bound to the initiation's mac1 and to the server.
		other := testInitiation(t, pub, size)
		_, err = OpenCookieReply(reply[:], other, &encKey)
		require.Error(t, err)
		wrongKey := LabelKey(CookieLabel, randomKey(t))
		_, err = OpenCookieReply(reply[:], init, &wrongKey)
		require.ErrorIs(t, err, ErrAuth)
		for i := range CookieReplySize {
			bad := reply
			bad[i] ^= 0x10
			_, err := OpenCookieReply(bad[:], init, &encKey)
			require.Error(t, err, "byte %d", i)
		}
		for n := range CookieReplySize {
			_, err := OpenCookieReply(reply[:n], init, &encKey)
			require.ErrorIs(t, err, ErrMalformed)
		}
		t0 = t0.Add(3 * CookieSecretLife)
	}
}

func TestRateLimiter(t *testing.T) {
	const rate, burst = 256, 512 // the Server's defaults (admission.go)
	t0 := time.Unix(100, 0)
	v4 := netip.MustParseAddr("198.51.100.1")
	tests := []struct {
		name string
		run  func(t *testing.T, r *RateLimiter)
	}{
		{"burst then refill", func(t *testing.T, r *RateLimiter) {
			for i := range burst {
				require.True(t, r.Allow(v4, t0), "token %d", i)
			}
			require.False(t, r.Allow(v4, t0))
			interval := time.Second / rate
			require.False(t, r.Allow(v4, t0.Add(interval-1)))
			require.True(t, r.Allow(v4, t0.Add(interval)), "one token per interval")
			require.False(t, r.Allow(v4, t0.Add(interval)))
			for i := range burst {
				require.True(t, r.Allow(v4, t0.Add(time.Hour)), "refilled to the burst, not beyond: %d", i)
			}
			require.False(t, r.Allow(v4, t0.Add(time.Hour)))
		}},
		{"sources are independent", func(t *testing.T, r *RateLimiter) {
			for range burst {
				r.Allow(v4, t0)
			}
			require.False(t, r.Allow(v4, t0))
			require.True(t, r.Allow(netip.MustParseAddr("198.51.100.2"), t0))
			require.False(t, r.Allow(netip.MustParseAddr("::ffff:198.51.100.1"), t0), "IPv4-mapped is the same source")
		}},
		{"IPv6 by /64", func(t *testing.T, r *RateLimiter) {
			for i := range burst {
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 15: byte(i)})
				require.True(t, r.Allow(a, t0))
			}
			require.False(t, r.Allow(netip.MustParseAddr("2001:db8::ffff"), t0), "same /64")
			require.True(t, r.Allow(netip.MustParseAddr("2001:db8:0:1::1"), t0), "another /64")
		}},
		{"table is bounded and fails closed", func(t *testing.T, r *RateLimiter) {
			for i := range 3 {
				require.True(t, r.Allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0))
			}
			require.Equal(t, 3, r.Len())
			require.False(t, r.Allow(netip.AddrFrom4([4]byte{10, 0, 0, 9}), t0), "full")
			require.True(t, r.Allow(netip.AddrFrom4([4]byte{10, 0, 0, 9}), t0.Add(time.Second)), "refilled buckets were swept")
			require.LessOrEqual(t, r.Len(), 3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, NewRateLimiter(rate, burst, 3)) })
	}
}

func resetTrigger(id uint32) []byte {
	pkt := make([]byte, wire.MinTransportSize)
	wire.PutTransportHeader(pkt, id, 0, 0)
	return pkt
}

func spoofedAddrPort(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), uint16(1024+i%5000))
}

func TestResetToken(t *testing.T) {
	priv := randomKey(t)
	t0 := time.Unix(100, 0)
	from := netip.MustParseAddrPort("192.0.2.1:5000")
	before := NewResetSender(priv)
	after := NewResetSender(priv) // a restarted server: same key, no state
	other := NewResetSender(randomKey(t))

	pkt := resetTrigger(0xabcdef)
	pkt[9] = 3 // some counter
	r1, ok := before.Answer(pkt, from, t0)
	require.True(t, ok)
	r2, ok := after.Answer(pkt, from, t0)
	require.True(t, ok)
	require.Equal(t, r1, r2, "the token survives a restart")
	r3, _ := other.Answer(pkt, from, t0)
	require.NotEqual(t, r1, r3, "another server key gives another token")
	require.Less(t, len(r1), len(pkt), "a reset is smaller than its trigger")

	id, tok, ok := wire.ParseReset(r1[:])
	require.True(t, ok)
	require.Equal(t, uint32(0xabcdef), id)
	key := ResetKey(priv)
	want := ResetToken(&key, 0xabcdef)
	require.True(t, ResetMatches(&tok, &want))
	notWant := ResetToken(&key, 0xabcdee)
	require.False(t, ResetMatches(&tok, &notWant), "tokens differ per session")

	_, ok = before.Answer(r1[:], from, t0)
	require.False(t, ok, "a reset is never answered")
	_, ok = before.Answer(pkt[:wire.ResetSize], from, t0)
	require.False(t, ok, "nothing is answered with a packet as large as itself")

	limited := NewResetSender(priv)
	sent := 0
	for range 100 {
		if _, ok := limited.Answer(pkt, from, t0); ok {
			sent++
		}
	}
	require.Equal(t, ResetBurst, sent, "resets are rate limited per source")
}

// TestResetGlobalRate: a reset is an oracle for the token of any session
// ID, so resets over all sources are held to ResetGlobalRate per second.
func TestResetGlobalRate(t *testing.T) {
	r := NewResetSender(randomKey(t))
	t0 := time.Unix(100, 0)
	count := func(now time.Time, from int) int {
		n := 0
		for i := range 1000 {
			if _, ok := r.Answer(resetTrigger(uint32(i+1)), spoofedAddrPort(from+i), now); ok {
				n++
			}
		}
		return n
	}
	require.Equal(t, ResetGlobalRate, count(t0, 0), "the burst")
	require.Equal(t, 0, count(t0.Add(50*time.Millisecond), 1000))
	require.Equal(t, ResetGlobalRate, count(t0.Add(1050*time.Millisecond), 2000), "one second's worth later")
	require.LessOrEqual(t, ResetGlobalRate, 10, "the documented rate (security.md)")
}

// TestResetSpoofedSourcesCannotFillTable: a flood from spoofed sources
// creates per-source buckets only for the resets the global limit lets
// through, and a source over its own limit spends none of the global budget.
func TestResetSpoofedSourcesCannotFillTable(t *testing.T) {
	r := NewResetSender(randomKey(t))
	t0 := time.Unix(100, 0)
	for i := range 2 * resetSources {
		r.Answer(resetTrigger(7), spoofedAddrPort(i), t0)
	}
	require.LessOrEqual(t, r.Sources(), ResetGlobalRate, "buckets only for sources that got a reset")

	r = NewResetSender(randomKey(t))
	a, b := spoofedAddrPort(1), spoofedAddrPort(2)
	sent := func(from netip.AddrPort) int {
		n := 0
		for range 100 {
			if _, ok := r.Answer(resetTrigger(7), from, t0); ok {
				n++
			}
		}
		return n
	}
	require.Equal(t, ResetBurst, sent(a))
	require.Equal(t, ResetBurst, sent(b), "a's refused attempts did not use up the global budget")
}

func TestTimestampTable(t *testing.T) {
	a, b := randomKey(t), randomKey(t)
	tt := NewTimestampTable(2)
	require.True(t, tt.Fresh(a, 10))
	tt.Accept(a, 10)
	require.False(t, tt.Fresh(a, 10), "equal is a replay")
	require.False(t, tt.Fresh(a, 9))
	require.True(t, tt.Fresh(a, 11))
	require.True(t, tt.Fresh(b, 1), "per key")
	tt.Accept(b, 1)
	tt.Accept(randomKey(t), 5)
	require.Equal(t, 2, tt.Len(), "bounded")
}
