package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/fec"
)

// Regression tests for the bounds on what a hostile but authenticated peer
// can make a session spend (docs/security.md, "Reliability-layer and FEC
// bounds"). Each drives a real session pair by hand (sessionPairs) and
// injects crafted frames sealed with the peer's real keys.

// addPair makes a session pair on sp with the FEC parameters p (as if
// negotiated) and exchanges one message each way.
func (sp *sessionPairs) addPair(tb testing.TB, p fecParams) (cli, srv *Conn) {
	tb.Helper()
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	ck := sessionKeys{send: k1, recv: k2}
	sk := sessionKeys{send: k2, recv: k1}
	now := time.Now()
	id := uint32(len(sp.conns)/2 + 1)
	cli, err := newConn(sp.cliEP, id, &ck, ChaCha20Poly1305, p, sp.srvAP, true, now)
	require.NoError(tb, err)
	srv, err = newConn(sp.srvEP, id, &sk, ChaCha20Poly1305, p, sp.cliAP, false, now)
	require.NoError(tb, err)
	cli.SetHandler(NopHandler{})
	srv.SetHandler(NopHandler{})
	_, err = cli.Write([]byte("hello"))
	require.NoError(tb, err)
	for range 4 {
		cli.pump(now)
		cli.shard.flushSends()
		feed(srv, sp.cliOut.take(), sp.cliAP, now)
		srv.pump(now)
		srv.shard.flushSends()
		feed(cli, sp.srvOut.take(), sp.srvAP, now)
	}
	require.Equal(tb, stateEstablished, srv.state)
	sp.conns = append(sp.conns, cli, srv)
	return cli, srv
}

// inject seals each body as a frame of type kind from cli and delivers it
// to srv at now.
func (sp *sessionPairs) inject(cli, srv *Conn, kind byte, bodies [][]byte, now time.Time) {
	for _, b := range bodies {
		cli.sendFrame(kind, b)
	}
	cli.shard.flushSends()
	feed(srv, sp.cliOut.take(), sp.cliAP, now)
}

// fecShard builds a shard header by hand: the peer's own encoder would
// never claim these counts.
func fecShard(group uint32, index int, parity bool, data, par, n int) []byte {
	b := make([]byte, fec.HeaderSize+n)
	b[0], b[1], b[2], b[3] = byte(group), byte(group>>8), byte(group>>16), byte(group>>24)
	b[4] = byte(index)
	b[5] = 0xF1
	if parity {
		b[5] = 0xF2
	}
	b[6], b[7] = byte(data), byte(par)
	b[8], b[9] = byte(n), byte(n>>8)
	return b
}

// TestFECShardBounds (issue 13, section 2 item 2): after negotiating
// RS(10,3), a peer claims other shard counts (up to 64 data / 32 parity)
// and cycles through (data, parity) pairs so that every recovery needs a
// new Reed-Solomon codec; and it sends 11-byte shards that each pinned a
// full-MTU buffer. Now shards beyond the negotiated counts are dropped and
// counted as malformed, the codecs built stay within the 10×3 negotiated
// pairs, and the decoder's memory (its own accounting) stays within the
// session's budget and close to what was sent.
func TestFECShardBounds(t *testing.T) {
	cfg := &Config{FEC: FECConfig{DataShards: 10, ParityShards: 3}}
	sp := newSessionPairs(t, cfg, false)
	p := fecParams{data: 10, parity: 3, maxParity: 3}
	cli, srv := sp.addPair(t, p)
	now := time.Now()
	dec := srv.fec.dec

	// Codec churn: each group is data-1 tiny data shards and one parity
	// shard, which completes it and needs the pair's codec.
	group := uint32(1 << 20)
	var bodies [][]byte
	outside := 0
	for pair := range 72 * 4 {
		data, par := 1+pair%64, 1+(pair/64)%32
		if pair%2 == 1 {
			data, par = 1+pair%12, 1+pair%4 // near the negotiated counts
		}
		group++
		for i := range data - 1 {
			bodies = append(bodies, fecShard(group, i, false, data, par, 1))
		}
		bodies = append(bodies, fecShard(group, data, true, data, par, 8))
		if data > p.data || par > p.maxParity {
			outside += data
		}
	}
	malformed0 := srv.Stats().Drops.Malformed
	sp.inject(cli, srv, frameFEC, bodies, now)
	st := dec.Stats()
	t.Logf("%d shards, %d outside RS(10,3): %d dropped as malformed, %d codecs built", len(bodies), outside, srv.Stats().Drops.Malformed-malformed0, st.CodecBuilds)
	require.GreaterOrEqual(t, srv.Stats().Drops.Malformed-malformed0, uint64(outside), "shards claiming more than negotiated are dropped and counted")
	require.LessOrEqual(t, st.CodecBuilds, uint64(p.data*p.maxParity+1), "codecs only for the negotiated pairs")

	// Memory: 64 groups of 9 of their 10 data shards, first 11 bytes
	// each (a full-MTU buffer each before), then full size.
	limits := fecLimits(p, srv.ep.set.fecMaxPacket())
	for _, size := range []int{1, srv.ep.set.fecMaxPacket()} {
		bodies, sent := bodies[:0], 0
		for range 64 {
			group++
			for i := range p.data - 1 {
				s := fecShard(group, i, false, p.data, p.parity, size)
				bodies = append(bodies, s)
				sent += len(s)
			}
		}
		sp.inject(cli, srv, frameFEC, bodies, now)
		held := dec.Held()
		t.Logf("shards of %d bytes: %d bytes sent, decoder holds %d (budget %d)", fec.HeaderSize+size, sent, held, limits.MaxBytes)
		require.LessOrEqual(t, held, limits.MaxBytes)
		if size == 1 {
			require.LessOrEqual(t, held, 64*(p.data-1)*16+64*(p.data+p.maxParity)*srv.ep.set.fecMaxPacket()/8,
				"tiny shards pin a 16-byte class each, plus what the pool keeps")
		}
	}
}
