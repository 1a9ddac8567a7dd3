package uxp

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGarbageFlood sends 100,000 garbage datagrams as fast as possible to a
// real server socket on 127.0.0.1 while an established session keeps
// exchanging messages. The session must deliver every message, in order,
// both ways; afterwards the heap and goroutine counts must be back where
// they were (within floodHeapSlack, for runtime and allocator noise), and
// the server must have dropped and counted the garbage it read.
//
// The garbage mixes plain random bytes, initiations with bad mac1,
// transport packets for unknown sessions, and transport packets for the
// live session that fail its AEAD (the most expensive kind to reject).
func TestGarbageFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("garbage flood: skipped in -short mode")
	}
	const (
		datagrams = 100_000
		senders   = 2
		messages  = 300
		// floodHeapSlack bounds heap growth across the flood after GC, not
		// counting the messages the test's handlers keep. It covers KCP's
		// queues growing to their working size and allocator noise; the
		// flood would leave tens of MiB if anything it caused were
		// retained (100,000 datagrams of up to 1400 bytes).
		floodHeapSlack = 1 << 20
	)
	kp := testKeys(t)
	srvPC, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	srvH := &recordServer{newConn: func() *recordConn { r := newRecordConn(); r.echo = true; return r }}
	srv, err := NewServer(srvPC, srvH, &Config{PrivateKey: kp.Private, Workers: 2})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })

	cliH := newRecordConn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, err := Dial(ctx, srvPC.LocalAddr().String(), cliH, &Config{ServerPublicKey: kp.Public})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	conn := cli.Conn()
	// Warm up so the session's buffers exist before the baseline.
	writeRetry(t, conn, []byte("warm-up"))
	waitEcho(t, cliH, 1, 5*time.Second)
	heap0, g0 := settledMemory()

	var wg sync.WaitGroup
	start := time.Now()
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Error(err)
				return
			}
			defer pc.Close()
			_ = pc.SetWriteBuffer(4 << 20)
			rng := rand.New(rand.NewPCG(uint64(s), 99))
			buf := make([]byte, 1400)
			to := srvPC.LocalAddr().(*net.UDPAddr).AddrPort()
			for i := range datagrams / senders {
				n := 1 + rng.IntN(len(buf))
				for j := range n {
					buf[j] = byte(rng.Uint32())
				}
				switch i % 4 {
				case 0: // random bytes
				case 1: // an initiation with a bad mac1
					n = initiationSize
					buf[0], buf[1], buf[2], buf[3] = msgInitiation, protocolVersion, byte(ChaCha20Poly1305), 0
				case 2: // a transport packet for an unknown session
					n = max(n, minTransportSize)
					putTransportHeader(buf, rng.Uint32(), rng.Uint64(), 0)
				case 3: // the live session's ID, a fresh counter, a bad tag
					n = max(n, minTransportSize)
					putTransportHeader(buf, conn.ID(), 1<<40+uint64(i), 0)
				}
				_, _ = pc.WriteToUDPAddrPort(buf[:n], to)
			}
		}()
	}

	// Meanwhile, the session keeps talking.
	for i := range messages {
		writeRetry(t, conn, testMessage(i, 1+i*7%3000))
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	floodTime := time.Since(start)
	waitEcho(t, cliH, messages+1, 30*time.Second)
	_, echoed, _ := cliH.snapshot()
	require.Len(t, echoed, messages+1)
	for i := range messages {
		require.True(t, bytes.Equal(testMessage(i, 1+i*7%3000), echoed[i+1]), "message %d", i)
	}

	heap1, g1 := settledMemory()
	// The test's own handlers keep every message (server and client side):
	// that is retained by design and not the SDK's.
	kept := 0
	for _, m := range echoed {
		kept += 2 * cap(m)
	}
	st := srv.Stats()
	t.Logf("flood of %d datagrams took %v; server drops %+v (the rest were dropped by the kernel's socket buffer); heap %d -> %d bytes (%d of them the test's recorded messages), goroutines %d -> %d",
		datagrams, floodTime, st.Drops, heap0, heap1, kept, g0, g1)
	require.Equal(t, 1, st.Sessions)
	require.LessOrEqual(t, g1, g0, "goroutines grew")
	require.LessOrEqual(t, int64(heap1)-int64(heap0)-int64(kept), int64(floodHeapSlack), "heap grew")
	require.Positive(t, st.Drops.AuthFailed, "forged packets for the live session reach the AEAD and are counted")
	require.Positive(t, st.Drops.UnknownSession)
	require.Positive(t, st.Drops.Malformed)
}
