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

// loadRole is the scale scenario's load generator. It is honest rather
// than clever: every session is a real uxp.Client with its own UDP socket
// (so its own read loop and update worker), exactly what o.n separate
// players would be, only packed in one process. It dials o.n sessions, 64
// at a time, prints "LOADED <n>", then makes every session write one
// 100-byte sink message per second (spread evenly over the second) until
// its stdin closes.
func loadRole(ctx context.Context, o *options) error {
	raiseNoFile(uint64(o.n) + 1024)
	cfg, err := uxpClientConfig(sysUXP, o.key)
	if err != nil {
		return err
	}
	// A load client needs no 64 KiB message buffer.
	cfg.MaxMessageSize = 1024
	cfg.SendQueueBytes = 4096
	server, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return err
	}
	// Each load process binds its own loopback address (-bind): UDP
	// ephemeral ports only conflict per address, and 50,000 sockets on one
	// address would exhaust the default range (32768-60999).
	bind := net.ParseIP(o.bind)
	conns := make([]*uxp.Conn, o.n)
	clients := make([]*uxp.Client, o.n)
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
					cl, err := dialFrom(hctx, bind, server, cfg)
					cancel()
					if err == nil {
						clients[i], conns[i] = cl, cl.Conn()
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
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
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

// dialFrom is uxp.Dial from a socket bound to ip (any port).
func dialFrom(ctx context.Context, ip net.IP, server *net.UDPAddr, cfg *uxp.Config) (*uxp.Client, error) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	cl, err := uxp.NewClient(pc, server, nil, cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := cl.Start(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}
