package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// serverStats is the server child's answer to STATS.
type serverStats struct {
	SinkBytes      int64  `json:"sink_bytes"`
	SinkSpanNs     int64  `json:"sink_span_ns"`
	CPUNs          int64  `json:"cpu_ns"`  // user+system since MARK
	WallNs         int64  `json:"wall_ns"` // since MARK
	RSS            int64  `json:"rss"`
	BaseRSS        int64  `json:"base_rss"`
	Heap           int64  `json:"heap"` // live heap after a GC
	BaseHeap       int64  `json:"base_heap"`
	Goroutines     int    `json:"goroutines"`
	BaseGoroutines int    `json:"base_goroutines"`
	Sessions       int64  `json:"sessions"`
	Accepted       int64  `json:"accepted"`
	Drops          string `json:"drops,omitempty"` // uxp: datagrams dropped, by reason
	// RepeatSegs is the data segments KCP received that it already had
	// (or that were beyond its window), process-wide since MARK: the
	// duplicates that crossed the path. uxp only.
	RepeatSegs uint64 `json:"repeat_segs,omitempty"`
	Ended      string `json:"ended,omitempty"` // uxp: sessions ended, by error
}

// clientResult is a client child's JSON result.
type clientResult struct {
	RTTNs      []int64 `json:"rtt_ns,omitempty"`
	Sent       int     `json:"sent,omitempty"` // requests
	Lost       int     `json:"lost,omitempty"` // raw UDP requests without a reply
	SentBytes  int64   `json:"sent_bytes,omitempty"`
	ElapsedNs  int64   `json:"elapsed_ns,omitempty"`
	CPUNs      int64   `json:"cpu_ns,omitempty"`
	Handshakes int64   `json:"handshakes,omitempty"`
	Failures   int64   `json:"failures,omitempty"`
	PacketsOut uint64  `json:"packets_out,omitempty"` // uxp only
	PacketsIn  uint64  `json:"packets_in,omitempty"`  // uxp only
	Retrans    uint64  `json:"retrans,omitempty"`     // uxp only
	// The process's KCP retransmissions by cause (kcp-go's process-wide
	// counters; a client process runs one session): timeout, fast
	// (two later ACKs) and early (a later ACK and nothing new to send).
	// uxp only.
	RetransRTO   uint64 `json:"retrans_rto,omitempty"`
	RetransFast  uint64 `json:"retrans_fast,omitempty"`
	RetransEarly uint64 `json:"retrans_early,omitempty"`
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is this process's resident set size in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// markedLiveHeap is the heap the runtime's last GC found live
// (/gc/heap/live:bytes), read without forcing a GC.
func markedLiveHeap() int64 {
	smp := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(smp)
	if smp[0].Value.Kind() != metrics.KindUint64 {
		return liveHeap()
	}
	return int64(smp[0].Value.Uint64())
}

func serverRole(ctx context.Context, o *options) error {
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	srv, err := listenSystem(ctx, o.sys, o.addr)
	if err != nil {
		return err
	}
	defer srv.Close()
	st := serverStats{BaseHeap: liveHeap(), BaseRSS: rss(), BaseGoroutines: runtime.NumGoroutine()}
	fmt.Printf("READY %s %s\n", srv.Addr(), srv.Key())
	markCPU, markAt := cpuTime(), time.Now()
	repeat0 := kcp.DefaultSnmp.Copy().RepeatSegs
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "MARK":
			if o.profile != "" {
				if f, err := os.Create(o.profile); err == nil && pprof.StartCPUProfile(f) == nil {
					defer pprof.StopCPUProfile()
				}
			}
			markCPU, markAt = cpuTime(), time.Now()
			repeat0 = kcp.DefaultSnmp.Copy().RepeatSegs
			fmt.Println("OK")
		case "STATS":
			st.CPUNs = int64(cpuTime() - markCPU)
			st.WallNs = int64(time.Since(markAt))
			b, span := srv.Sink()
			st.SinkBytes, st.SinkSpanNs = b, int64(span)
			st.Sessions, st.Accepted = srv.Sessions(), srv.Accepted()
			if d, ok := srv.(interface{ Drops() string }); ok {
				st.Drops = d.Drops()
			}
			if e, ok := srv.(interface{ Ended() string }); ok {
				st.Ended = e.Ended()
			}
			st.RepeatSegs = kcp.DefaultSnmp.Copy().RepeatSegs - repeat0
			st.Goroutines = runtime.NumGoroutine()
			st.Heap = liveHeap()
			st.RSS = rss()
			j, _ := json.Marshal(st)
			fmt.Println(string(j))
		case "QUIT":
			return nil
		}
	}
	return nil
}

func clientRole(ctx context.Context, o *options) error {
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	var res clientResult
	var err error
	switch o.scen {
	case "scale":
		return loadRole(ctx, o)
	case "soak":
		return soakLoadRole(ctx, o)
	case "soakprobe":
		return soakProbeRole(ctx, o)
	case "hs":
		res, err = handshakeRole(ctx, o)
	default:
		if isUXP(o.sys) {
			res, err = uxpClientRole(ctx, o)
		} else {
			res, err = genericClientRole(ctx, o)
		}
	}
	if err != nil {
		return err
	}
	j, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(j))
	return nil
}

func durations(d []time.Duration) []int64 {
	r := make([]int64, len(d))
	for i, v := range d {
		r[i] = int64(v)
	}
	return r
}

// bulkChunk is the message size of the bulk scenario on message systems.
const bulkChunk = 16 << 10

// udpChunk is the datagram size of the raw-UDP blast: what a full uxp
// packet was (uxp's default MTU before it followed the path).
const udpChunk = 1400

func uxpClientRole(ctx context.Context, o *options) (clientResult, error) {
	var res clientResult
	h := &uxpbench.Client{}
	cl, err := dialUXP(ctx, o.sys, o.addr, o.key, h)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	c := cl.Conn()
	cpu0 := cpuTime()
	snmp0 := kcp.DefaultSnmp.Copy()
	switch o.scen {
	case "bulk":
		res.SentBytes, _, err = h.Bulk(ctx, c, bulkChunk, o.dur)
		if err != nil {
			return res, err
		}
	case "rr":
		rtts, err := h.ClosedLoop(ctx, c, o.size, 1<<30, o.dur)
		if err != nil {
			return res, err
		}
		res.RTTNs = durations(rtts)
	case "open":
		rtts, sent, err := h.OpenLoop(ctx, c, o.size, o.rate, o.dur, o.grace)
		if err != nil {
			return res, err
		}
		res.RTTNs, res.Sent = durations(rtts), sent
		res.Lost = sent - len(rtts)
	default:
		return res, fmt.Errorf("unknown scenario %q", o.scen)
	}
	res.CPUNs = int64(cpuTime() - cpu0)
	st := c.Stats()
	res.PacketsOut, res.PacketsIn, res.Retrans = st.PacketsSent, st.PacketsReceived, st.Retransmissions
	snmp := kcp.DefaultSnmp.Copy()
	res.RetransRTO = snmp.LostSegs - snmp0.LostSegs
	res.RetransFast = snmp.FastRetransSegs - snmp0.FastRetransSegs
	res.RetransEarly = snmp.EarlyRetransSegs - snmp0.EarlyRetransSegs
	return res, nil
}

func genericClientRole(ctx context.Context, o *options) (clientResult, error) {
	var res clientResult
	c, err := dialSystem(ctx, o.sys, o.addr)
	if err != nil {
		return res, err
	}
	defer c.Close()
	base := time.Now()
	clock := func() time.Duration { return time.Since(base) }
	cpu0 := cpuTime()
	_, isUDP := c.(*udpConn)
	buf := make([]byte, maxMsg)
	switch o.scen {
	case "bulk":
		chunk := bulkChunk
		if isUDP {
			chunk = udpChunk
		}
		msg := make([]byte, chunk)
		msg[0] = uxpbench.KindSink
		for start := time.Now(); time.Since(start) < o.dur; {
			if err := c.WriteMsg(msg); err != nil {
				if isUDP {
					continue // ENOBUFS and the like: the blast just loses it
				}
				return res, err
			}
			res.SentBytes += int64(chunk)
		}
		if !isUDP {
			// The echo comes back after every byte before it arrived.
			uxpbench.PutHeader(msg[:uxpbench.HeaderSize], uxpbench.KindEcho, clock())
			if err := c.WriteMsg(msg[:uxpbench.HeaderSize]); err != nil {
				return res, err
			}
			if _, err := c.ReadMsg(buf); err != nil {
				return res, err
			}
		}
	case "rr":
		req := make([]byte, max(o.size, uxpbench.HeaderSize))
		var rtts []time.Duration
		for start := time.Now(); time.Since(start) < o.dur; {
			t := clock()
			uxpbench.PutHeader(req, uxpbench.KindEcho, t)
			if err := c.WriteMsg(req); err != nil {
				return res, err
			}
			if isUDP {
				_ = c.(*udpConn).c.SetReadDeadline(time.Now().Add(time.Second))
			}
			n, err := c.ReadMsg(buf)
			var ne net.Error
			if isUDP && errors.As(err, &ne) && ne.Timeout() {
				res.Lost++
				continue
			}
			if err != nil {
				return res, err
			}
			if n >= uxpbench.HeaderSize {
				rtts = append(rtts, clock()-uxpbench.Stamp(buf))
			}
		}
		res.RTTNs = durations(rtts)
	case "open":
		var mu sync.Mutex
		var rtts []time.Duration
		var replies atomic.Int64
		go func() {
			rb := make([]byte, maxMsg)
			for {
				n, err := c.ReadMsg(rb)
				if err != nil {
					return
				}
				if n >= uxpbench.HeaderSize {
					d := clock() - uxpbench.Stamp(rb)
					mu.Lock()
					rtts = append(rtts, d)
					mu.Unlock()
					replies.Add(1)
				}
			}
		}()
		req := make([]byte, max(o.size, uxpbench.HeaderSize))
		period := time.Duration(float64(time.Second) / o.rate)
		start := time.Now()
		for next := start; time.Since(start) < o.dur; next = next.Add(period) {
			time.Sleep(time.Until(next))
			uxpbench.PutHeader(req, uxpbench.KindEcho, clock())
			if err := c.WriteMsg(req); err != nil && !isUDP {
				return res, err
			}
			res.Sent++
		}
		for deadline := time.Now().Add(o.grace); replies.Load() < int64(res.Sent) && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		res.RTTNs = durations(rtts)
		mu.Unlock()
		res.Lost = res.Sent - len(res.RTTNs)
	default:
		return res, fmt.Errorf("unknown scenario %q", o.scen)
	}
	res.CPUNs = int64(cpuTime() - cpu0)
	return res, nil
}

// handshakeRole opens and closes uxp sessions from o.par goroutines for
// o.dur and counts the completed handshakes.
func handshakeRole(ctx context.Context, o *options) (clientResult, error) {
	var res clientResult
	cfg, err := uxpClientConfig(sysUXP, o.key)
	if err != nil {
		return res, err
	}
	cfg.MaxMessageSize = 4096
	cfg.SendQueueBytes = 4096
	var ok, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range max(o.par, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < o.dur && ctx.Err() == nil {
				hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				cl, err := uxp.Dial(hctx, o.addr, nil, cfg)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				cl.Close()
			}
		}()
	}
	wg.Wait()
	res.Handshakes, res.Failures = ok.Load(), failed.Load()
	res.ElapsedNs = int64(time.Since(start))
	return res, nil
}
