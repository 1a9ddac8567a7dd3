package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// loadPerSocket is how many load sessions share one socket.
const loadPerSocket = 2000

// loadRole is the scale scenario's load generator. Every session is a
// real uxp session (handshake, keys, KCP, heartbeats), dialled through
// uxp.Dialer with loadPerSocket sessions sharing each UDP socket, read
// loop and update worker, as a bot farm or a relay holding many upstream
// sessions would run them. It dials o.n sessions, 64 at a time, prints
// "LOADED <n> <failed>", then makes every session write one 100-byte sink
// message per second (spread evenly over the second) until its stdin
// closes.
func loadRole(ctx context.Context, o *options) error {
	cfg, server, err := loadSetup(o)
	if err != nil {
		return err
	}
	// Each load process binds its own loopback address (-bind), so that
	// its sockets' ports do not collide with another process's.
	bind := net.ParseIP(o.bind)
	dialers := make([]*uxp.Dialer, (o.n+loadPerSocket-1)/loadPerSocket)
	for i := range dialers {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: bind})
		if err != nil {
			return err
		}
		if dialers[i], err = uxp.NewDialer(pc, cfg); err != nil {
			pc.Close()
			return err
		}
	}
	defer func() {
		for _, d := range dialers {
			d.Close()
		}
	}()
	conns := make([]*uxp.Conn, o.n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n || ctx.Err() != nil {
					return
				}
				for attempt := 0; ; attempt++ {
					hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					c, err := dialers[i/loadPerSocket].Dial(hctx, server, nil)
					cancel()
					if err == nil {
						conns[i] = c
						break
					}
					if attempt == 2 {
						failed.Add(1)
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("LOADED %d %d\n", int64(o.n)-failed.Load(), failed.Load())

	stop := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		close(stop)
	}()
	msg := make([]byte, 100)
	msg[0] = uxpbench.KindSink
	const ticks = 100 // per second
	t := time.NewTicker(time.Second / ticks)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i := tick % ticks; i < len(conns); i += ticks {
			if c := conns[i]; c != nil {
				_, _ = c.Write(msg)
			}
		}
	}
}

func raiseNoFile(want uint64) {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return
	}
	if rl.Cur >= want {
		return
	}
	rl.Cur = min(max(want, rl.Cur), max(rl.Max, want))
	if rl.Max < rl.Cur {
		rl.Max = rl.Cur // needs root; harmless if refused
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// loadSetup prepares a load process of o.n sessions: the file limit for
// its sockets, a client Config sized for small messages, and the server's
// address.
func loadSetup(o *options) (*uxp.Config, *net.UDPAddr, error) {
	raiseNoFile(uint64(o.n/loadPerSocket) + 1024)
	cfg, err := uxpClientConfig(sysUXP, o.key)
	if err != nil {
		return nil, nil, err
	}
	// A load client needs no 64 KiB message buffer.
	cfg.MaxMessageSize = 1024
	cfg.SendQueueBytes = 4096
	cfg.Workers = 1
	server, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return nil, nil, err
	}
	return cfg, server, nil
}
