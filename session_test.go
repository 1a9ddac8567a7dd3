package uxp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// testMessage builds message i: a 4-byte index, then bytes derived from
// the index, so any corruption, loss, duplicate or reordering is visible.
func testMessage(i, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.LittleEndian.PutUint32(b, uint32(i))
	r := rand.New(rand.NewPCG(uint64(i), 7))
	for j := 4; j < len(b); j++ {
		b[j] = byte(r.Uint32())
	}
	return b[:max(size, 1)]
}

// messageSizes mixes 1 byte up to several MTUs.
func messageSizes(n int) []int {
	r := rand.New(rand.NewPCG(42, 42))
	sizes := make([]int, n)
	for i := range sizes {
		switch i % 4 {
		case 0:
			sizes[i] = 1 + r.IntN(64)
		case 1:
			sizes[i] = 64 + r.IntN(1400)
		case 2:
			sizes[i] = 1400 + r.IntN(3000)
		default:
			sizes[i] = 4 + r.IntN(6000)
		}
	}
	sizes[0] = 1
	return sizes
}

// writeRetry writes msg, waiting (in virtual time) while the queue is full.
func writeRetry(t testing.TB, c *Conn, msg []byte) {
	t.Helper()
	for {
		_, err := c.Write(msg)
		if !errors.Is(err, ErrWouldBlock) {
			require.NoError(t, err)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLossyDelivery sends 2000 messages of mixed sizes over a link with
// 20% loss, duplication and reordering each way; the server echoes them.
// Both directions must deliver every message intact, in order, once.
func TestLossyDelivery(t *testing.T) {
	for _, cipher := range []Cipher{ChaCha20Poly1305, Salsa20Poly1305} {
		t.Run(cipher.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 2000
				bad := netsim.Impairment{Loss: 0.2, Duplicate: 0.05, Reorder: 0.1, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}
				p := newSimPair(t, 1, nil, &Config{Cipher: cipher}, false)
				p.srvH.newConn = func() *recordConn { r := newRecordConn(); r.echo = true; return r }
				p.net.SetDefault(bad)
				require.NoError(t, p.cli.Start(context.Background()))
				conn := p.cli.Conn()
				require.Equal(t, cipher, conn.Cipher())

				sizes := messageSizes(n)
				const window = 32 // keep the echo side's queue bounded
				for i := range n {
					for {
						_, msgs, _ := p.cliH.snapshot()
						if i-len(msgs) < window {
							break
						}
						time.Sleep(5 * time.Millisecond)
					}
					writeRetry(t, conn, testMessage(i, sizes[i]))
				}
				for {
					_, msgs, _ := p.cliH.snapshot()
					if len(msgs) >= n {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(time.Second) // anything duplicated would show up by now
				_, echoed, _ := p.cliH.snapshot()
				require.Len(t, echoed, n)
				received := p.srvH.handler(0)
				_, got, _ := received.snapshot()
				require.Len(t, got, n)
				for i := range n {
					want := testMessage(i, sizes[i])
					require.True(t, bytes.Equal(want, got[i]), "server message %d differs", i)
					require.True(t, bytes.Equal(want, echoed[i]), "echoed message %d differs", i)
				}
				st := conn.Stats()
				require.Positive(t, st.Retransmissions, "20%% loss must cost retransmissions")
				require.Zero(t, st.Drops.AuthFailed)
				require.Positive(t, p.srv.Stats().Drops.Replay+conn.Stats().Drops.Replay, "duplicates must be caught by the replay window")
				t.Logf("net %+v client %+v", p.net.Stats(), st)
			})
		})
	}
}

func TestWrongServerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		other := testKeys(t)
		p := newSimPair(t, 2, nil, &Config{ServerPublicKey: other.Public, HandshakeTimeout: 2 * time.Second}, false)
		start := time.Now()
		err := p.cli.Start(context.Background())
		require.ErrorIs(t, err, ErrHandshakeFailed)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.LessOrEqual(t, time.Since(start), 2*time.Second)
		conns, connClosed, closed := p.srvH.counts()
		require.Zero(t, conns+connClosed+closed, "no server callback may fire")
		st := p.srv.Stats()
		require.Positive(t, st.Drops.AuthFailed, "initiations under the wrong key fail mac1")
		require.Zero(t, st.HandshakesCompleted)
		require.Zero(t, st.HalfOpen)
	})
}

// capture records the datagrams crossing one direction.
type capture struct {
	mu   chan struct{}
	pkts [][]byte
}

func newCapture() *capture { c := &capture{mu: make(chan struct{}, 1)}; c.mu <- struct{}{}; return c }

func (c *capture) hook(p []byte) bool {
	<-c.mu
	c.pkts = append(c.pkts, append([]byte(nil), p...))
	c.mu <- struct{}{}
	return false
}

func (c *capture) first(typ byte) []byte {
	<-c.mu
	defer func() { c.mu <- struct{}{} }()
	for _, p := range c.pkts {
		if len(p) > 0 && p[0] == typ {
			return p
		}
	}
	return nil
}

// largestTransport returns the largest transport packet seen, which
// carries the message just sent. Path MTU probes (pmtud.go), at least
// pmtuBase bytes of padding, are not looked at.
func (c *capture) largestTransport() []byte {
	<-c.mu
	defer func() { c.mu <- struct{}{} }()
	var best []byte
	for _, p := range c.pkts {
		if len(p) > 0 && p[0] == msgTransport && len(p) > len(best) && len(p) < pmtuBase {
			best = p
		}
	}
	return best
}

func serverDrops(p *simPair) uint64 { return p.srv.Stats().Drops.Total() }

// TestReplayTamperTruncate injects replays, bit flips and truncations of
// real packets. None may be delivered, each must be counted, nothing may
// panic, and the session must stay healthy.
func TestReplayTamperTruncate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c2s, s2c := newCapture(), newCapture()
		p := newSimPair(t, 3, nil, nil, false)
		p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Drop: c2s.hook})
		p.net.SetLink(p.srvPC.LocalAddr(), p.cliPC.LocalAddr(), netsim.Impairment{Drop: s2c.hook})
		require.NoError(t, p.cli.Start(context.Background()))
		conn := p.cli.Conn()
		secret := bytes.Repeat([]byte("secret payload "), 20)
		_, err := conn.Write(secret)
		require.NoError(t, err)
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		h := p.srvH.handler(0)
		_, msgs, _ := h.snapshot()
		require.Len(t, msgs, 1)

		data := c2s.largestTransport()
		require.NotNil(t, data)
		require.False(t, bytes.Contains(data, secret[:15]), "payload must not travel in the clear")
		srvAddr, cliAddr := p.srvPC.LocalAddr(), p.cliPC.LocalAddr()
		inject := func(pkt []byte) { p.net.Inject(cliAddr, srvAddr, pkt) }

		{ // replay
			before := p.srv.Stats().Drops.Replay
			for range 100 {
				inject(data)
			}
			synctest.Wait()
			_, msgs, _ := h.snapshot()
			require.Len(t, msgs, 1, "a replayed packet must not be delivered again")
			require.Equal(t, before+100, p.srv.Stats().Drops.Replay)
		}
		{ // bitflip
			before := serverDrops(p)
			for bit := range len(data) * 8 {
				pkt := bytes.Clone(data)
				pkt[bit/8] ^= 1 << (bit % 8)
				inject(pkt)
			}
			synctest.Wait()
			_, msgs, _ := h.snapshot()
			require.Len(t, msgs, 1)
			require.Equal(t, before+uint64(len(data)*8), serverDrops(p), "every flipped packet is dropped and counted")
		}
		{ // truncate
			init := c2s.first(msgInitiation)
			resp := s2c.first(msgResponse)
			require.Len(t, init, initiationSize)
			require.Len(t, resp, responseSize)
			before := serverDrops(p)
			var injected uint64
			for _, pkt := range [][]byte{init, data} {
				for n := range len(pkt) {
					inject(pkt[:n])
					injected++
				}
			}
			cliBefore := p.cli.Stats().Drops.Total()
			for n := range len(resp) {
				p.net.Inject(srvAddr, cliAddr, resp[:n])
			}
			synctest.Wait()
			require.Equal(t, before+injected, serverDrops(p))
			require.Equal(t, cliBefore+uint64(len(resp)), p.cli.Stats().Drops.Total())
		}
		// The session is unharmed: a new message still gets through.
		_, err = conn.Write([]byte("still alive"))
		require.NoError(t, err)
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		_, msgs, closed := h.snapshot()
		require.Len(t, msgs, 2)
		require.Equal(t, "still alive", string(msgs[1]))
		require.Empty(t, closed)
	})
}

// TestBlackholeClosesBoth cuts one direction. Both sides must close within
// the idle timeout plus one heartbeat interval, each with exactly one
// OnClosed.
func TestBlackholeClosesBoth(t *testing.T) {
	for _, dir := range []string{"client-to-server", "server-to-client"} {
		t.Run(dir, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := &Config{HeartbeatInterval: time.Second, IdleTimeout: 4 * time.Second}
				p := newSimPair(t, 4, cfg, cfg, true)
				synctest.Wait()
				time.Sleep(100 * time.Millisecond)
				require.Equal(t, 1, p.srv.Stats().Sessions)
				from, to := p.cliPC.LocalAddr(), p.srvPC.LocalAddr()
				if dir == "server-to-client" {
					from, to = to, from
				}
				p.net.SetLink(from, to, netsim.Impairment{Blackhole: true})
				cut := time.Now()
				srvConn := p.srvH.conns[0]
				limit := cfg.IdleTimeout + cfg.HeartbeatInterval
				for _, done := range []<-chan struct{}{p.cli.Conn().Done(), srvConn.Done()} {
					select {
					case <-done:
					case <-time.After(limit - time.Since(cut) + time.Millisecond):
						t.Fatalf("a side still open %v after the cut", time.Since(cut))
					}
				}
				require.LessOrEqual(t, time.Since(cut), limit)
				time.Sleep(10 * time.Second) // no second OnClosed may follow
				_, _, cliClosed := p.cliH.snapshot()
				_, _, srvClosed := p.srvH.handler(0).snapshot()
				require.Len(t, cliClosed, 1)
				require.Len(t, srvClosed, 1)
				for _, err := range append(cliClosed, srvClosed...) {
					require.ErrorIs(t, err, net.ErrClosed)
				}
				var idle *IdleTimeoutError
				if dir == "client-to-server" {
					require.ErrorAs(t, srvClosed[0], &idle)
				} else {
					require.ErrorAs(t, cliClosed[0], &idle)
				}
				_, connClosed, _ := p.srvH.counts()
				require.Equal(t, 1, connClosed)
			})
		})
	}
}
