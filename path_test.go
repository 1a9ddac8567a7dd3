package uxp

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// migratingConn adds OnMigrated to a recordConn.
type migratingConn struct {
	*recordConn
	mu    sync.Mutex
	moves [][2]string
}

func (m *migratingConn) OnMigrated(c *Conn, from, to net.Addr) {
	m.mu.Lock()
	m.moves = append(m.moves, [2]string{from.String(), to.String()})
	m.mu.Unlock()
}

func (m *migratingConn) snapshotMoves() [][2]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][2]string(nil), m.moves...)
}

// sendAndCheck writes n messages from the client, one every interval, and
// checks that the server received them all once, in order, and echoed them
// back. mid, if set, runs after half of them.
func sendAndCheck(t *testing.T, p *simPair, n int, interval time.Duration, mid func()) {
	t.Helper()
	phases := map[int]func(){}
	if mid != nil {
		phases[n/2] = mid
	}
	sendAndCheckPhases(t, p, n, interval, phases)
}

// sendAndCheckPhases is sendAndCheck running phases[i] before message i.
func sendAndCheckPhases(t *testing.T, p *simPair, n int, interval time.Duration, phases map[int]func()) {
	t.Helper()
	conn := p.cli.Conn()
	for i := range n {
		if f := phases[i]; f != nil {
			f()
		}
		writeRetry(t, conn, testMessage(i, 200+i%1500))
		time.Sleep(interval)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, msgs, _ := p.cliH.snapshot(); len(msgs) >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	_, got, _ := p.srvH.handler(0).snapshot()
	_, echoed, _ := p.cliH.snapshot()
	require.Len(t, got, n)
	require.Len(t, echoed, n)
	for i := range n {
		want := testMessage(i, 200+i%1500)
		require.True(t, bytes.Equal(want, got[i]), "server message %d", i)
		require.True(t, bytes.Equal(want, echoed[i]), "echoed message %d", i)
	}
}

func echoSessions(p *simPair) {
	p.srvH.newConn = func() *recordConn { r := newRecordConn(); r.echo = true; return r }
}

// TestNATRebinding moves the client to a new address in the middle of a
// lossy transfer, as a NAT rebinding does. The server must validate the new
// address, move the session to it (Stats, OnMigrated), and no message may be
// lost or duplicated.
func TestNATRebinding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 21, nil, nil, false)
		echoSessions(p)
		p.net.SetDefault(netsim.Impairment{Loss: 0.05, Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond})
		require.NoError(t, p.cli.Start(context.Background()))
		oldAddr := p.cliPC.LocalAddr().String()
		var mc *migratingConn
		var srvConn *Conn
		sendAndCheck(t, p, 400, 10*time.Millisecond, func() {
			srvConn = p.srvH.conns[0]
			mc = &migratingConn{recordConn: p.srvH.handler(0)}
			srvConn.SetHandler(mc)
			require.Equal(t, oldAddr, srvConn.RemoteAddr().String())
			require.NoError(t, p.cliPC.Rebind("10.0.0.3:6000"))
		})
		st := srvConn.Stats()
		require.Equal(t, uint64(1), st.Migrations)
		require.Equal(t, "10.0.0.3:6000", st.RemoteAddr.String())
		require.Equal(t, "10.0.0.3:6000", srvConn.RemoteAddr().String())
		require.Equal(t, uint64(1), p.srv.Stats().Migrations)
		require.Equal(t, [][2]string{{oldAddr, "10.0.0.3:6000"}}, mc.snapshotMoves())
		require.Nil(t, p.cli.Conn().Err())
	})
}

// attacker is an endpoint at its own address that sends the server copies
// of the client's packets and counts what the server sends it. With
// forward set it also relays what it gets from the server to the client,
// so a path challenge reaches the real client (from the attacker's address).
type attacker struct {
	pc      *netsim.PacketConn
	mu      sync.Mutex
	sent    int // bytes sent to the server
	got     int // bytes received from the server
	done    chan struct{}
	forward net.Addr
}

func newAttacker(t *testing.T, p *simPair, forward bool) *attacker {
	pc, err := p.net.Listen("10.0.0.66:7000")
	require.NoError(t, err)
	a := &attacker{pc: pc, done: make(chan struct{})}
	if forward {
		a.forward = p.cliPC.LocalAddr()
	}
	srv := p.srvPC.LocalAddr().String()
	go func() {
		defer close(a.done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if from.String() != srv {
				continue
			}
			a.mu.Lock()
			a.got += n
			a.mu.Unlock()
			if a.forward != nil {
				_, _ = pc.WriteTo(buf[:n], a.forward)
			}
		}
	}()
	return a
}

func (a *attacker) send(p *simPair, pkt []byte) {
	a.mu.Lock()
	a.sent += len(pkt)
	a.mu.Unlock()
	_, _ = a.pc.WriteTo(pkt, p.srvPC.LocalAddr())
}

func (a *attacker) close() (sent, got int) {
	a.pc.Close()
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent, a.got
}

// TestSpoofedMigration: an attacker who sees the client's packets sends
// them to the server from its own address. Replayed copies must be dropped
// by the replay window and get nothing back; copies that race ahead of the
// originals (fresh counters) may start a path challenge, but the attacker's
// address never receives more than 3x the bytes it sent, and the session
// never moves, even when the attacker relays the challenge to the client.
func TestSpoofedMigration(t *testing.T) {
	t.Run("replay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c2s := newCapture()
			p := newSimPair(t, 31, nil, nil, false)
			echoSessions(p)
			p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Drop: c2s.hook})
			require.NoError(t, p.cli.Start(context.Background()))
			sendAndCheck(t, p, 50, 10*time.Millisecond, nil)

			a := newAttacker(t, p, true)
			<-c2s.mu
			pkts := c2s.pkts
			c2s.mu <- struct{}{}
			replayBefore := p.srv.Stats().Drops.Replay
			var replayed uint64
			for _, pkt := range pkts {
				if pkt[0] == msgTransport {
					a.send(p, pkt)
					replayed++
				}
			}
			time.Sleep(2 * time.Second)
			sent, got := a.close()
			srvConn := p.srvH.conns[0]
			require.Equal(t, p.cliPC.LocalAddr().String(), srvConn.RemoteAddr().String(), "session moved")
			require.Zero(t, srvConn.Stats().Migrations)
			require.Zero(t, got, "replays must get no answer at all")
			require.Positive(t, sent)
			require.Equal(t, replayed, p.srv.Stats().Drops.Replay-replayBefore, "every replay dropped and counted")
			_, err := p.cli.Conn().Write([]byte("still alive"))
			require.NoError(t, err)
			time.Sleep(time.Second)
			_, msgs, _ := p.srvH.handler(0).snapshot()
			require.Equal(t, "still alive", string(msgs[len(msgs)-1]))
		})
	})
	t.Run("race", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newSimPair(t, 32, nil, nil, false)
			echoSessions(p)
			require.NoError(t, p.cli.Start(context.Background()))
			a := newAttacker(t, p, true)
			stolen := make(chan []byte, 1024)
			var k int
			var kmu sync.Mutex
			// Every 4th client packet is "raced": the attacker delivers it
			// from its own address and the original is lost.
			p.net.SetLink(p.cliPC.LocalAddr(), p.srvPC.LocalAddr(), netsim.Impairment{Drop: func(pkt []byte) bool {
				kmu.Lock()
				defer kmu.Unlock()
				k++
				if pkt[0] != msgTransport || k%4 != 0 {
					return false
				}
				select {
				case stolen <- append([]byte(nil), pkt...):
					return true
				default:
					return false
				}
			}})
			relayDone := make(chan struct{})
			stop := make(chan struct{})
			go func() {
				defer close(relayDone)
				for {
					select {
					case pkt := <-stolen:
						a.send(p, pkt)
					case <-stop:
						return
					}
				}
			}()
			sendAndCheck(t, p, 300, 10*time.Millisecond, nil)
			close(stop)
			<-relayDone
			time.Sleep(time.Second)
			sent, got := a.close()
			srvConn := p.srvH.conns[0]
			require.Equal(t, p.cliPC.LocalAddr().String(), srvConn.RemoteAddr().String(), "session moved")
			require.Zero(t, srvConn.Stats().Migrations)
			require.Positive(t, got, "raced packets are fresh, so they do start challenges")
			require.LessOrEqual(t, got, 3*sent, "amplification towards the attacker's address")
			t.Logf("attacker sent %d bytes, received %d", sent, got)
		})
	})
}

// TestRebindTwiceIdle rebinds an idle client twice: each time its next
// heartbeat starts a validation and the session follows, and messages
// still flow both ways afterwards.
func TestRebindTwiceIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 22, nil, nil, false)
		echoSessions(p)
		require.NoError(t, p.cli.Start(context.Background()))
		synctest.Wait()
		srvConn := p.srvH.conns[0]
		for i, addr := range []string{"10.0.0.3:6000", "10.0.0.4:7000"} {
			require.NoError(t, p.cliPC.Rebind(addr))
			time.Sleep(4 * time.Second) // one heartbeat interval and then some
			require.Equal(t, addr, srvConn.RemoteAddr().String())
			require.Equal(t, uint64(i+1), srvConn.Stats().Migrations)
		}
		writeRetry(t, p.cli.Conn(), []byte("hello from the third address"))
		waitEcho(t, p.cliH, 1, 5*time.Second)
		require.Nil(t, p.cli.Conn().Err())
	})
}

// TestMigrationReturnsAfterRelayAttack is the strongest attacker in the
// migration threat model (docs/security.md): it races every client packet
// to the server from its own address, and relays what the server sends it
// back to the client spoofed as the server. That is an on-path relay, and
// it can pull the session to its address, as RFC 9000 accepts. Once it
// stops, the session must come back to the client's real address by
// itself, and no message may be lost or duplicated.
func TestMigrationReturnsAfterRelayAttack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 33, nil, nil, false)
		echoSessions(p)
		require.NoError(t, p.cli.Start(context.Background()))
		cliAddr, srvAddr := p.cliPC.LocalAddr(), p.srvPC.LocalAddr()
		att, err := p.net.Listen("10.0.0.66:7000")
		require.NoError(t, err)
		var (
			mu     sync.Mutex
			active bool
		)
		isActive := func() bool { mu.Lock(); defer mu.Unlock(); return active }
		stolen := make(chan []byte, 4096)
		p.net.SetLink(cliAddr, srvAddr, netsim.Impairment{Drop: func(pkt []byte) bool {
			if !isActive() || pkt[0] != msgTransport {
				return false
			}
			select {
			case stolen <- append([]byte(nil), pkt...):
				return true
			default:
				return false
			}
		}})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // race the client's packets from the attacker's address
			defer wg.Done()
			for {
				select {
				case pkt := <-stolen:
					_, _ = att.WriteTo(pkt, srvAddr)
				case <-stop:
					return
				}
			}
		}()
		go func() { // relay the server's packets to the client, spoofed
			defer wg.Done()
			buf := make([]byte, maxDatagram)
			for {
				n, _, err := att.ReadFrom(buf)
				if err != nil {
					return
				}
				if isActive() {
					p.net.Inject(srvAddr, cliAddr, buf[:n])
				}
			}
		}()
		setActive := func(v bool) { mu.Lock(); active = v; mu.Unlock() }
		var srvConn *Conn
		movedAway := false
		sendAndCheckPhases(t, p, 600, 10*time.Millisecond, map[int]func(){
			100: func() { srvConn = p.srvH.conns[0]; setActive(true) },
			300: func() {
				movedAway = srvConn.RemoteAddr().String() == "10.0.0.66:7000"
				setActive(false)
			},
		})
		require.True(t, movedAway, "an on-path relay can move the session (RFC 9000 accepts this)")
		close(stop)
		att.Close()
		wg.Wait()
		require.Equal(t, cliAddr.String(), srvConn.RemoteAddr().String(), "the session came back")
		require.GreaterOrEqual(t, srvConn.Stats().Migrations, uint64(2))
	})
}
