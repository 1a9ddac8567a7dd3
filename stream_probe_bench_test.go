package uxp

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkStreamProbeBehindFlood measures how long a small frame waits
// behind a flood of small writes on the same stream: the sender writes
// 20-byte frames as fast as the stream takes them, and every 2 ms one of
// them is a probe carrying its send time; the receiver splits the byte
// stream into frames and times each probe. It runs TCP (Go's default,
// TCP_NODELAY) and a uxp StreamConn over loopback in the same run and
// reports each one's probe p50 and p99 and uxp's ratio to TCP
// (ratio-p50, ratio-p99; issue 14's target: at most 2). The idle-p50
// metrics are the same probes without the flood: each transport's floor.
// Each iteration floods for 400 ms per transport; run with -benchtime=3x
// or so.
func BenchmarkStreamProbeBehindFlood(b *testing.B) {
	const flood = 400 * time.Millisecond
	var tcp, ux, tcpIdle, uxIdle []time.Duration
	var tcpBytes, uxBytes int64
	for b.Loop() {
		w, r, stop := tcpPair(b)
		lat, _ := probeBehindFlood(b, w, r, flood/4, false)
		tcpIdle = append(tcpIdle, lat...)
		lat, n := probeBehindFlood(b, w, r, flood, true)
		stop()
		tcp, tcpBytes = append(tcp, lat...), tcpBytes+n
		w, r, stop = uxpPair(b, nil)
		lat, _ = probeBehindFlood(b, w, r, flood/4, false)
		uxIdle = append(uxIdle, lat...)
		lat, n = probeBehindFlood(b, w, r, flood, true)
		stop()
		ux, uxBytes = append(ux, lat...), uxBytes+n
	}
	ti50, _ := quantiles(tcpIdle)
	ui50, _ := quantiles(uxIdle)
	tp50, tp99 := quantiles(tcp)
	up50, up99 := quantiles(ux)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(tp50), "tcp-p50-ms")
	b.ReportMetric(ms(tp99), "tcp-p99-ms")
	b.ReportMetric(ms(up50), "uxp-p50-ms")
	b.ReportMetric(ms(up99), "uxp-p99-ms")
	b.ReportMetric(ms(ti50), "tcp-idle-p50-ms")
	b.ReportMetric(ms(ui50), "uxp-idle-p50-ms")
	b.ReportMetric(ms(up50)/max(ms(tp50), 1e-3), "ratio-p50")
	b.ReportMetric(ms(up99)/max(ms(tp99), 1e-3), "ratio-p99")
	secs := flood.Seconds() * float64(b.N)
	b.ReportMetric(float64(tcpBytes)/secs/1e6, "tcp-MB/s")
	b.ReportMetric(float64(uxBytes)/secs/1e6, "uxp-MB/s")
}

func quantiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

/* Frames of the probe benchmark: 20 bytes, type u8 | ... */
const (
	floodFrameSize = 20
	frameFlood     = 0
	frameProbe     = 1 // then the send time, u64 unix ns
	frameEnd       = 2 // the last frame
)

// probeBehindFlood floods w for d (or, without flood, sends only the
// probes) and returns the probe latencies seen on r and the bytes
// delivered. Every frame must arrive, in order: the sender numbers them.
func probeBehindFlood(b *testing.B, w, r net.Conn, d time.Duration, flood bool) ([]time.Duration, int64) {
	var (
		wg   sync.WaitGroup
		werr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var f [floodFrameSize]byte
		end := time.Now().Add(d)
		nextProbe := time.Now()
		for seq := uint32(0); ; seq++ {
			now := time.Now()
			f = [floodFrameSize]byte{}
			binary.LittleEndian.PutUint32(f[1:5], seq)
			switch {
			case now.After(end):
				f[0] = frameEnd
			case !now.Before(nextProbe):
				f[0] = frameProbe
				binary.LittleEndian.PutUint64(f[5:13], uint64(now.UnixNano()))
				nextProbe = now.Add(2 * time.Millisecond)
			case !flood:
				time.Sleep(nextProbe.Sub(now))
				seq--
				continue
			}
			if _, err := w.Write(f[:]); err != nil {
				werr = err
				return
			}
			if f[0] == frameEnd {
				return
			}
		}
	}()
	var lats []time.Duration
	var got int64
	buf := make([]byte, 64<<10)
	have := 0
	var want uint32
	for {
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := r.Read(buf[have:])
		if err != nil && !errors.Is(err, io.EOF) {
			b.Fatalf("read after %d frames: %v", want, err)
		}
		got += int64(n)
		have += n
		now := time.Now()
		i := 0
		for ; have-i >= floodFrameSize; i += floodFrameSize {
			f := buf[i : i+floodFrameSize]
			if seq := binary.LittleEndian.Uint32(f[1:5]); seq != want {
				b.Fatalf("frame %d arrived as number %d: lost, duplicated or reordered", want, seq)
			}
			want++
			if f[0] == frameEnd {
				wg.Wait()
				if werr != nil {
					b.Fatal(werr)
				}
				return lats, got
			}
			if f[0] == frameProbe {
				lats = append(lats, now.Sub(time.Unix(0, int64(binary.LittleEndian.Uint64(f[5:13])))))
			}
		}
		have = copy(buf, buf[i:have])
	}
}
