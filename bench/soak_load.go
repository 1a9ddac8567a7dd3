package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// The soak scenario's client processes (soak.go runs them): the load
// generator (-scen soak) and the probe (-scen soakprobe).
//
// Echo messages are 100 bytes: the 16-byte uxpbench header (kind E and
// the sender's clock), then the message's sequence number in its session
// (u64). The server echoes them; the load generator checks every echo
// against the next sequence number it expects on that session, so a
// missing, duplicated or reordered echo is counted, as is one that comes
// back more than soakLate after it was sent.

/* Implementation constants */
const (
	soakMsgSize   = 100
	soakLate      = 5 * time.Second
	soakDrainWait = 3 * time.Second // how long a session to be closed waits for its echoes
	soakSockets   = 10              // at least this many sockets, for soakMuteShare's granularity
	soakMuteShare = 0.3             // of the churn: sessions abandoned silently (the rest Close)
	msgTransport  = 4               // uxp's transport datagram type (docs/protocol.md)
)

// loadSample is the load generator's cumulative counters, printed as
// "SAMPLE <json>" every soak interval and at the end.
type loadSample struct {
	Live        int64 `json:"live"`         // sessions established and in use
	Sent        int64 `json:"sent"`         // echo messages written
	Echoed      int64 `json:"echoed"`       // echoes received in order
	OutOfOrder  int64 `json:"out_of_order"` // echoes after a gap
	Dup         int64 `json:"dup"`          // echoes seen before
	Late        int64 `json:"late"`         // echoes more than soakLate after sending
	LostDead    int64 `json:"lost_dead"`    // messages never echoed, on sessions that ended without our Close
	IdleClosed  int64 `json:"idle_closed"`  // sessions ended by the idle timeout while we used them
	OtherClosed int64 `json:"other_closed"` // sessions ended otherwise without our Close
	Closed      int64 `json:"closed"`       // sessions we closed (churn)
	ClosedOut   int64 `json:"closed_out"`   // echoes outstanding when we closed
	Abandoned   int64 `json:"abandoned"`    // sessions we went silent on (churn)
	Dials       int64 `json:"dials"`        // successful dials, first ones included
	DialFails   int64 `json:"dial_fails"`   // dials that failed (each retried)
	WriteErrs   int64 `json:"write_errs"`
	Garbage     int64 `json:"garbage"` // garbage datagrams sent
}

// soakSess is one session of the load generator and its handler.
type soakSess struct {
	uxp.NopHandler
	g    *soakLoad
	slot int
	c    *uxp.Conn

	mu        sync.Mutex
	sent, exp uint64 // next sequence number to send, to receive
	closing   bool   // we are closing it: no more writes
	abandoned bool   // we went silent: no more writes, ending ignored
	dead      bool
}

// soakLoad is the load generator's state.
type soakLoad struct {
	o       *options
	server  net.Addr
	dialers []*uxp.Dialer
	mutes   []*mutePC // the dialers' socket wrappers, by the same index; nil: a plain socket
	// muteSocks: sockets 0 to muteSocks-1 are wrapped; churn abandons
	// the sessions on them and closes the others.
	muteSocks int
	slots     []atomic.Pointer[soakSess]
	redial    chan int
	base      time.Time
	st        struct {
		live, sent, echoed, ooo, dup, late, lostDead, idle, other, closed, closedOut, abandoned, dials, dialFails, writeErrs, garbage atomic.Int64
	}
}

func (g *soakLoad) clock() time.Duration { return time.Since(g.base) }

func (g *soakLoad) sample() loadSample {
	s := &g.st
	return loadSample{Live: s.live.Load(), Sent: s.sent.Load(), Echoed: s.echoed.Load(), OutOfOrder: s.ooo.Load(),
		Dup: s.dup.Load(), Late: s.late.Load(), LostDead: s.lostDead.Load(), IdleClosed: s.idle.Load(),
		OtherClosed: s.other.Load(), Closed: s.closed.Load(), ClosedOut: s.closedOut.Load(), Abandoned: s.abandoned.Load(),
		Dials: s.dials.Load(), DialFails: s.dialFails.Load(), WriteErrs: s.writeErrs.Load(), Garbage: s.garbage.Load()}
}

// OnNewDataComing checks one echo.
func (s *soakSess) OnNewDataComing(_ *uxp.Conn, b []byte) {
	if len(b) < uxpbench.HeaderSize+8 {
		return
	}
	g := s.g
	if g.clock()-uxpbench.Stamp(b) > soakLate {
		g.st.late.Add(1)
	}
	seq := binary.LittleEndian.Uint64(b[uxpbench.HeaderSize:])
	s.mu.Lock()
	switch {
	case seq == s.exp:
		s.exp++
		g.st.echoed.Add(1)
	case seq > s.exp:
		g.st.ooo.Add(1)
		g.st.echoed.Add(1)
		s.exp = seq + 1
	default:
		g.st.dup.Add(1)
	}
	s.mu.Unlock()
}

// OnClosed classifies the end of a session and, if it was not ours to
// end, dials its slot again.
func (s *soakSess) OnClosed(_ *uxp.Conn, err error) {
	g := s.g
	s.mu.Lock()
	s.dead = true
	closing, abandoned := s.closing, s.abandoned
	out := int64(s.sent - s.exp)
	s.mu.Unlock()
	if abandoned {
		g.mutes[s.slot%len(g.mutes)].unmute(s.c.ID())
		return
	}
	g.st.live.Add(-1)
	if closing {
		return // counted by closeSlot
	}
	g.st.lostDead.Add(out)
	if _, ok := errors.AsType[*uxp.IdleTimeoutError](err); ok {
		g.st.idle.Add(1)
	} else {
		g.st.other.Add(1)
	}
	if g.slots[s.slot].CompareAndSwap(s, nil) {
		g.redial <- s.slot
	}
}

// mutePC is the load generator's socket: it drops the datagrams of muted
// sessions, to abandon them silently (no close, no heartbeat) as a
// client that vanished does.
//
// With loss > 0 it also drops that fraction of the datagrams it sends and
// of those it receives: the path's loss, each way.
type mutePC struct {
	net.PacketConn
	muted sync.Map // session ID (uint32) → struct{}
	loss  float64
}

func (m *mutePC) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := m.PacketConn.ReadFrom(b)
		if err != nil || m.loss == 0 || rand.Float64() >= m.loss {
			return n, addr, err
		}
	}
}

func (m *mutePC) WriteTo(b []byte, addr net.Addr) (int, error) {
	if m.loss > 0 && rand.Float64() < m.loss {
		return len(b), nil
	}
	if len(b) >= 8 && b[0] == msgTransport {
		if _, ok := m.muted.Load(binary.LittleEndian.Uint32(b[4:8])); ok {
			return len(b), nil
		}
	}
	return m.PacketConn.WriteTo(b, addr)
}

func (m *mutePC) mute(id uint32)   { m.muted.Store(id, struct{}{}) }
func (m *mutePC) unmute(id uint32) { m.muted.Delete(id) }

// dialSlot dials a session for slot until it succeeds or ctx ends.
func (g *soakLoad) dialSlot(ctx context.Context, slot int) {
	d := g.dialers[slot%len(g.dialers)]
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		s := &soakSess{g: g, slot: slot}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := d.Dial(hctx, g.server, s)
		cancel()
		if err == nil {
			s.c = c
			g.st.dials.Add(1)
			g.st.live.Add(1)
			g.slots[slot].Store(s)
			select {
			case <-c.Done(): // ended before we stored it: OnClosed could not redial
				if g.slots[slot].CompareAndSwap(s, nil) {
					continue
				}
			default:
			}
			return
		}
		g.st.dialFails.Add(1)
		// Jittered backoff: clients that all lost their server must not
		// come back in lockstep.
		select {
		case <-ctx.Done():
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// closeSlot ends the slot's session with Close once its echoes are in
// (or soakDrainWait passed), then dials the slot again.
func (g *soakLoad) closeSlot(ctx context.Context, s *soakSess) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	deadline := time.Now().Add(soakDrainWait)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		idle := s.sent == s.exp || s.dead
		s.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	out, dead := int64(s.sent-s.exp), s.dead
	s.mu.Unlock()
	if !dead {
		g.st.closedOut.Add(out)
		g.st.closed.Add(1)
		_ = s.c.Close()
	}
	if g.slots[s.slot].CompareAndSwap(s, nil) {
		g.redial <- s.slot
	}
}

// abandonSlot goes silent on the slot's session and dials a new one.
func (g *soakLoad) abandonSlot(s *soakSess) {
	s.mu.Lock()
	s.abandoned = true
	dead := s.dead
	s.mu.Unlock()
	if dead {
		return
	}
	g.st.abandoned.Add(1)
	g.st.live.Add(-1)
	g.mutes[s.slot%len(g.mutes)].mute(s.c.ID())
	if g.slots[s.slot].CompareAndSwap(s, nil) {
		g.redial <- s.slot
	}
}

// soakLoadRole runs o.n sessions, each writing one echo message a second,
// with churn and (if o.garbage > 0) garbage datagrams, until stdin closes.
func soakLoadRole(ctx context.Context, o *options) error {
	cfg, server, err := loadSetup(o)
	if err != nil {
		return err
	}
	cfg.RekeyAfterTime = o.rekey
	g := &soakLoad{o: o, server: server, slots: make([]atomic.Pointer[soakSess], o.n), redial: make(chan int, o.n+1), base: time.Now()}
	bind := net.ParseIP(o.bind)
	// Sockets: slot i uses socket i % n. Silent abandonment needs a
	// wrapper that drops a session's datagrams (mutePC), and a wrapped
	// socket runs uxp's generic one-datagram-per-call I/O, which cost the
	// load generator a syscall per datagram: at 20,000 sessions it could
	// not keep up, stalled, and its missing ACKs made the server
	// retransmit for every session at once. So only soakMuteShare of the
	// sockets are wrapped, and churn abandons the sessions on those and
	// closes the others; the rest get recvmmsg/sendmmsg. With loss every
	// socket is wrapped (the wrapper drops the path's loss).
	nSock := max(soakSockets, (o.n+loadPerSocket-1)/loadPerSocket)
	g.muteSocks = int(soakMuteShare*float64(nSock) + 0.5)
	if o.loss > 0 {
		g.muteSocks = nSock
	}
	if o.sockBuf > 0 {
		cfg.SocketBufferBytes = -1 // forced below
	}
	for i := range nSock {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: bind})
		if err != nil {
			return err
		}
		_ = pc.SetReadBuffer(4 << 20)
		_ = pc.SetWriteBuffer(4 << 20)
		if o.sockBuf > 0 {
			forceSockBuf(pc, o.sockBuf)
		}
		var m *mutePC
		var conn net.PacketConn = pc
		if i < g.muteSocks {
			m = &mutePC{PacketConn: pc, loss: o.loss}
			conn = m
		}
		d, err := uxp.NewDialer(conn, cfg)
		if err != nil {
			pc.Close()
			return err
		}
		g.dialers, g.mutes = append(g.dialers, d), append(g.mutes, m)
	}
	defer func() {
		for _, d := range g.dialers {
			d.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Dial every slot, 64 at a time, then keep redialing what ends.
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n || ctx.Err() != nil {
					return
				}
				g.dialSlot(ctx, i)
			}
		})
	}
	wg.Wait()
	fmt.Printf("LOADED %d %d\n", g.st.live.Load(), int64(o.n)-g.st.live.Load())
	for range 32 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case slot := <-g.redial:
					g.dialSlot(ctx, slot)
				}
			}
		}()
	}

	stop := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		close(stop)
	}()
	if o.garbage > 0 {
		go g.garbageLoop(ctx, o.garbage)
	}
	printSample := func() {
		j, _ := json.Marshal(g.sample())
		fmt.Printf("SAMPLE %s\n", j)
	}
	msg := make([]byte, soakMsgSize)
	const ticks = 100 // per second
	t := time.NewTicker(time.Second / ticks)
	defer t.Stop()
	sampleT := time.NewTicker(o.sampleEvery)
	defer sampleT.Stop()
	churnT := time.NewTicker(time.Second)
	defer churnT.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-stop:
			printSample()
			return nil
		case <-ctx.Done():
			return nil
		case <-sampleT.C:
			printSample()
			continue
		case <-churnT.C:
			g.churn(ctx)
			continue
		case <-t.C:
		}
		if o.idle {
			continue // sessions only keep alive (heartbeats, rekeys)
		}
		for i := tick % ticks; i < len(g.slots); i += ticks {
			s := g.slots[i].Load()
			if s == nil {
				continue
			}
			s.mu.Lock()
			if s.closing || s.abandoned || s.dead {
				s.mu.Unlock()
				continue
			}
			seq := s.sent
			s.sent++
			s.mu.Unlock()
			uxpbench.PutHeader(msg, uxpbench.KindEcho, g.clock())
			binary.LittleEndian.PutUint64(msg[uxpbench.HeaderSize:], seq)
			if _, err := s.c.Write(msg); err != nil {
				g.st.writeErrs.Add(1)
				s.mu.Lock()
				if s.sent == seq+1 {
					s.sent-- // not sent after all
				}
				s.mu.Unlock()
				continue
			}
			g.st.sent.Add(1)
		}
	}
}

// churn replaces o.churn of the sessions a second, picked at random: 70 %
// closed with Close, 30 % (soakMuteShare: those on a wrapped socket)
// abandoned silently (their dialer's mutePC drops their packets from then
// on).
func (g *soakLoad) churn(ctx context.Context) {
	k := int(float64(len(g.slots))*g.o.churn + rand.Float64())
	for range k {
		slot := rand.N(len(g.slots))
		s := g.slots[slot].Load()
		if s == nil {
			continue
		}
		if slot%len(g.dialers) < g.muteSocks { // soakMuteShare of the slots
			g.abandonSlot(s)
		} else {
			go g.closeSlot(ctx, s)
		}
	}
}

// garbageLoop sends rate garbage datagrams a second to the server from a
// socket of its own: half random bytes, half shaped like transport
// datagrams with random session IDs and counters.
func (g *soakLoad) garbageLoop(ctx context.Context, rate int) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(g.o.bind)})
	if err != nil {
		return
	}
	defer pc.Close()
	// Read and discard what comes back (stateless resets, cookie
	// replies), so that this socket's buffer does not fill and count
	// kernel drops among the load generators'.
	go func() {
		b := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(b); err != nil {
				return
			}
		}
	}()
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	b := make([]byte, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := 20 + rand.N(200)
		_, _ = crand.Read(b[:n])
		if rand.N(2) == 0 {
			b[0], b[1], b[2], b[3] = msgTransport, 0, 0, 0
		}
		if _, err := pc.WriteTo(b[:n], g.server); err == nil {
			g.st.garbage.Add(1)
		}
	}
}

// probeSample is the probe's view of one interval, printed as
// "SAMPLE <json>".
type probeSample struct {
	N     int     `json:"n"` // replies in the interval
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// The round trip's two halves (soakHandler): to the server's
	// callback, and back from it.
	InP99ms  float64 `json:"in_p99_ms"`
	InMaxMs  float64 `json:"in_max_ms"`
	OutP99ms float64 `json:"out_p99_ms"`
	OutMaxMs float64 `json:"out_max_ms"`
	// The probe process's own goroutine scheduling latency (max) and
	// its threads' wait for a CPU (% of the interval): a spike with
	// these high is the probe starved, not the server slow.
	SchedMaxMs  float64 `json:"sched_max_ms"`
	RunDelayPct float64 `json:"run_delay_pct"`
	// Retrans is the probe session's retransmissions (and tail probes)
	// in the interval, Recv its datagrams that failed authentication or
	// were dropped: a spike with retransmissions was a loss.
	Retrans uint64 `json:"retrans"`
	Lost    int    `json:"lost"`    // requests unanswered after soakLate
	Redials int64  `json:"redials"` // cumulative
}

// probe is the soak's probe: request/response at o.rate a second on one
// session, its latency reported per interval.
type probe struct {
	uxp.NopHandler
	base    time.Time
	mu      sync.Mutex
	rtts    []time.Duration
	ins     []time.Duration          // to the server's callback
	outs    []time.Duration          // back from it
	pending map[uint64]time.Duration // seq → send clock
	dead    chan struct{}
}

func (p *probe) OnNewDataComing(_ *uxp.Conn, b []byte) {
	if len(b) < uxpbench.HeaderSize+8 {
		return
	}
	seq := binary.LittleEndian.Uint64(b[uxpbench.HeaderSize:])
	now := time.Since(p.base)
	wall := time.Now().UnixNano()
	p.mu.Lock()
	if _, ok := p.pending[seq]; ok {
		delete(p.pending, seq)
		p.rtts = append(p.rtts, now-uxpbench.Stamp(b))
		if len(b) >= probeMsgBytes {
			sent := int64(binary.LittleEndian.Uint64(b[probeSentOff:]))
			srv := int64(binary.LittleEndian.Uint64(b[probeSrvOff:]))
			p.ins = append(p.ins, time.Duration(srv-sent))
			p.outs = append(p.outs, time.Duration(wall-srv))
		}
	}
	p.mu.Unlock()
}

func (p *probe) OnClosed(*uxp.Conn, error) { close(p.dead) }

func soakProbeRole(ctx context.Context, o *options) error {
	cfg, err := uxpClientConfig(sysUXP, o.key)
	if err != nil {
		return err
	}
	cfg.RekeyAfterTime = o.rekey
	server, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return err
	}
	pc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return err
	}
	if o.sockBuf > 0 && forceSockBuf(pc, o.sockBuf) {
		cfg.SocketBufferBytes = -1
	}
	d, err := uxp.NewDialer(pc, cfg)
	if err != nil {
		pc.Close()
		return err
	}
	defer d.Close()
	stop := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		close(stop)
	}()
	p := &probe{base: time.Now(), pending: make(map[uint64]time.Duration)}
	var sched schedLatency
	sched.read()
	lastDelay, lastAt := runDelay(), time.Now()
	var lastRetrans uint64
	var redials int64
	var c *uxp.Conn
	dial := func() {
		for ctx.Err() == nil {
			p.dead = make(chan struct{})
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cc, err := d.Dial(hctx, server, p)
			cancel()
			if err == nil {
				c = cc
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	dial()
	fmt.Println("PROBING")
	msg := make([]byte, soakMsgSize)
	t := time.NewTicker(time.Second / time.Duration(max(o.rate, 1)))
	defer t.Stop()
	sampleT := time.NewTicker(o.sampleEvery)
	defer sampleT.Stop()
	for seq := uint64(0); ; {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-p.dead:
			redials++
			dial()
			lastRetrans = 0
		case <-sampleT.C:
			now := time.Since(p.base)
			p.mu.Lock()
			s := probeSample{N: len(p.rtts), Redials: redials}
			for k, at := range p.pending {
				if now-at > soakLate {
					s.Lost++
					delete(p.pending, k)
				}
			}
			r, ins, outs := p.rtts, p.ins, p.outs
			p.rtts, p.ins, p.outs = nil, nil, nil
			p.mu.Unlock()
			if len(r) > 0 {
				slices.Sort(r)
				s.P50ms = float64(r[len(r)/2]) / 1e6
				s.P99ms = float64(r[min(len(r)-1, len(r)*99/100)]) / 1e6
				s.MaxMs = float64(r[len(r)-1]) / 1e6
			}
			_, s.SchedMaxMs = sched.read()
			if c != nil {
				r := c.Stats().Retransmissions
				s.Retrans = r - lastRetrans
				lastRetrans = r
			}
			d, at := runDelay(), time.Now()
			s.RunDelayPct = float64(d-lastDelay) / float64(at.Sub(lastAt)) * 100
			lastDelay, lastAt = d, at
			s.InP99ms, s.InMaxMs = p99Max(ins)
			s.OutP99ms, s.OutMaxMs = p99Max(outs)
			j, _ := json.Marshal(s)
			fmt.Printf("SAMPLE %s\n", j)
		case <-t.C:
			now := time.Since(p.base)
			uxpbench.PutHeader(msg, uxpbench.KindEcho, now)
			msg[1] = probeMark
			binary.LittleEndian.PutUint64(msg[uxpbench.HeaderSize:], seq)
			binary.LittleEndian.PutUint64(msg[probeSentOff:], uint64(time.Now().UnixNano()))
			p.mu.Lock()
			p.pending[seq] = now
			p.mu.Unlock()
			seq++
			_, _ = c.Write(msg)
		}
	}
}

// p99Max returns the p99 and the maximum of d in milliseconds (0 when
// empty); it sorts d.
func p99Max(d []time.Duration) (p99, maxMs float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*99/100)]) / 1e6, float64(d[len(d)-1]) / 1e6
}
