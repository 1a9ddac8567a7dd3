package main

import (
	"encoding/binary"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// soakHandler is the soak server's handler: the bench echo server, except
// that a probe message (probeMark after the kind) gets the server's wall
// clock written into its echo, at the moment its callback ran. The probe
// sent its own wall clock (same machine), so it splits each round trip
// into the way to the server's callback and the way back: a latency spike
// on the way in is the server's inbound (read loop, worker queue) or the
// probe's sending; one on the way back, the server's sending or the
// probe's receiving.
type soakHandler struct {
	*uxpbench.Server
	conn soakConn
}

// Probe message layout after the 16-byte header: seq (u64), the probe's
// wall clock at sending (u64 ns), the server's at its callback (u64 ns).
const (
	probeMark     = 'P'
	probeSentOff  = uxpbench.HeaderSize + 8
	probeSrvOff   = probeSentOff + 8
	probeMsgBytes = probeSrvOff + 8
)

func (h *soakHandler) OnNewConnComing(c *uxp.Conn) {
	h.Server.OnNewConnComing(c)
	c.SetHandler(&h.conn)
}

type soakConn struct{ uxp.NopHandler }

func (soakConn) OnNewDataComing(c *uxp.Conn, b []byte) {
	if len(b) < uxpbench.HeaderSize || b[0] != uxpbench.KindEcho {
		return
	}
	if b[1] == probeMark && len(b) >= probeMsgBytes {
		// b is the SDK's: stamp a copy.
		var m [256]byte
		n := copy(m[:], b)
		binary.LittleEndian.PutUint64(m[probeSrvOff:], uint64(time.Now().UnixNano()))
		_, _ = c.Write(m[:n])
		return
	}
	_, _ = c.Write(b) // Write copies b
}

// schedLatency reads the runtime's goroutine scheduling latency histogram
// and reports the p99 and the maximum of what was added since the last
// read.
type schedLatency struct {
	prev []uint64
}

const (
	schedMetric   = "/sched/latencies:seconds"
	gcPauseMetric = "/sched/pauses/total/gc:seconds" // stop-the-world pauses for GC
)

// read returns the p99 and the largest bucket's upper bound, in
// milliseconds, of the scheduling latencies since the previous read.
func (s *schedLatency) read() (p99, maxMs float64) { return s.readMetric(schedMetric) }

// readMetric is read for any time histogram of runtime/metrics.
func (s *schedLatency) readMetric(name string) (p99, maxMs float64) {
	smp := []metrics.Sample{{Name: name}}
	metrics.Read(smp)
	if smp[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, 0
	}
	h := smp[0].Value.Float64Histogram()
	d := make([]uint64, len(h.Counts))
	var total uint64
	for i, c := range h.Counts {
		d[i] = c
		if i < len(s.prev) {
			d[i] -= s.prev[i]
		}
		total += d[i]
	}
	s.prev = append(s.prev[:0], h.Counts...)
	if total == 0 {
		return 0, 0
	}
	upper := func(i int) float64 {
		b := h.Buckets[i+1]
		if b > 1e9 { // +Inf: the bucket's lower bound
			b = h.Buckets[i]
		}
		return b * 1e3
	}
	var cum uint64
	p99 = -1
	for i, c := range d {
		cum += c
		if p99 < 0 && cum*100 >= total*99 {
			p99 = upper(i)
		}
		if c > 0 {
			maxMs = upper(i)
		}
	}
	return p99, maxMs
}

// runDelay is the time this process's threads spent runnable but waiting
// for a CPU, as the kernel counts it (/proc/self/task/*/schedstat, second
// field), summed over the threads: what the Go scheduler's latency
// cannot see, a thread the kernel preempted for another process. -1 if
// unknown.
func runDelay() time.Duration {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		sum += v
	}
	return time.Duration(sum)
}

// udpDrops sums the kernel's receive-buffer drops (/proc/net/udp, last
// field) of the IPv4 UDP sockets whose local address match accepts: what
// overflowed a socket's buffer before its reader took it.
func udpDrops(match func(ip [4]byte, port uint16) bool) int64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return -1
	}
	var sum int64
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 13 {
			continue
		}
		a, p, ok := strings.Cut(f[1], ":")
		if !ok || len(a) != 8 {
			continue
		}
		v, err1 := strconv.ParseUint(a, 16, 32)
		port, err2 := strconv.ParseUint(p, 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		ip := [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} // little-endian on the machines we run on
		if !match(ip, uint16(port)) {
			continue
		}
		d, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		sum += d
	}
	return sum
}
