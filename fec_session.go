package uxp

import (
	"math"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/fec"
	"github.com/uxp-go/uxp/internal/wire"
)

// Forward error correction in a session. KCP output → fec.Encoder → each
// shard sealed as its own transport packet (frame type 5, fresh counter) →
// UDP; inbound, a shard is opened and replay-checked like any packet before
// fec.Decoder sees it, so a forged or replayed shard never reaches the
// Reed-Solomon decoder. Heartbeats, loss reports and close frames bypass
// FEC. Recovered packets enter KCP through its FEC input path, which keeps
// them out of the RTT estimate.

/* Specification constants */
const (
	// fecParityExtra is how much longer a parity shard is than the group's
	// largest data shard (the coded 2-byte length; fec/doc.go).
	fecParityExtra = 2

	statusFECRefused byte = 1
)

/* Implementation constants */
const (
	fecMaxGroups = 64
	// fecBudgetGroups is how many full groups (data plus maximum parity
	// regions of the largest packet) the decoder's memory budget holds
	// (fec.Limits.MaxBytes). Without loss a group holds its data only until
	// its last data shard arrives; a group held longer lacks data its
	// parity could not repair, and is the first dropped when the budget is
	// reached.
	fecBudgetGroups = 16
	// fecMaxAge drops an incomplete group after this long; KCP will have
	// retransmitted its packets by then.
	fecMaxAge = 500 * time.Millisecond
	// lossReportInterval is how often each side measures the loss it sees
	// and, in adaptive mode, reports it.
	lossReportInterval = 500 * time.Millisecond
	// lossFirstReport is when an adaptive session measures and reports
	// for the first time. Adaptive mode without a congestion controller
	// starts at the configured parity (FECConfig.ParityShards; under one,
	// at 0: initFEC) and keeps it until the peer's first report;
	// a clean link's first report drops it to 0. After a full interval
	// that was a 30 % overhead for the first half second, in Startup when
	// the congestion controller's budget is smallest, and left adaptive
	// FEC at 0.98x the goodput of FEC off through a 20 Mbit/s bottleneck.
	lossFirstReport = 100 * time.Millisecond
	// fecTargetFailure is the group failure probability adaptive mode aims
	// below: more than parity losses among data+parity shards.
	fecTargetFailure = 0.005
)

// fecParams is the FEC part of the handshake: a client's request, a
// server's policy, or the decision.
type fecParams struct {
	data, parity, maxParity int
	adaptive                bool
}

func (p fecParams) on() bool { return p.data > 0 }

// wire is the handshake form.
func (p fecParams) wire() wire.FECParams {
	return wire.FECParams{Data: uint8(p.data), Parity: uint8(p.parity), MaxParity: uint8(p.maxParity), Adaptive: p.adaptive}
}

// put writes the handshake form.
func (p fecParams) put(b []byte) { wire.PutFECParams(b, p.wire()) }

// parseFECParams decodes the handshake form and checks it against the fec
// package's bounds.
func parseFECParams(b []byte) (fecParams, bool) {
	w, ok := wire.ParseFECParams(b)
	p := fecParams{data: int(w.Data), parity: int(w.Parity), maxParity: int(w.MaxParity), adaptive: w.Adaptive}
	switch {
	case !ok:
		return p, false
	case p.data == 0:
		return fecParams{}, p.parity == 0 && p.maxParity == 0 && !p.adaptive
	case p.data > fec.MaxDataShards || p.parity > fec.MaxParityShards || p.maxParity > fec.MaxParityShards || p.maxParity < p.parity:
		return p, false
	}
	return p, true
}

// negotiateFEC applies a server's policy to a client's request. The
// decision is the request when the policy allows it.
func negotiateFEC(policy, req fecParams) (fecParams, bool) {
	switch {
	case !req.on():
		return fecParams{}, true
	case !policy.on(),
		req.data > policy.data,
		req.maxParity > policy.maxParity,
		req.adaptive && !policy.adaptive:
		return fecParams{}, false
	}
	return req, true
}

// fecState is a session's FEC and loss-measurement state, owned by the
// shard.
type fecState struct {
	params   fecParams
	enc      *fec.Encoder
	dec      *fec.Decoder
	expireAt time.Time

	// Loss measurement of inbound packets, from gaps in the peer's packet
	// counters.
	reportAt    time.Time
	lastMax     uint64
	lastPackets uint64
	peerLoss    float64 // smoothed loss the peer reports for our packets

	// Data shard rate since the last loss report (parityPays).
	rateAt   time.Time
	rateData uint64

	// cleanReports counts the loss reports in a row at parity 0 while
	// the segments keep the FEC room (sizeForParity).
	cleanReports int
}

func (c *Conn) initFEC(p fecParams, now time.Time) error {
	c.fec.reportAt = now.Add(lossReportInterval)
	if p.adaptive {
		c.fec.reportAt = now.Add(lossFirstReport)
	}
	if !p.on() {
		return nil
	}
	max := frameRoomSized(c.mtu, true) + wire.FrameHeaderSize // an inner frame that fits a shard
	enc, err := fec.NewEncoder(p.data, p.parity, max)
	if err != nil {
		return err
	}
	enc.MaxGroupDelay = c.ep.set.fecGroupDelay
	dec, err := fec.NewDecoder(fecMaxGroups, fecMaxAge, max)
	if err != nil {
		return err
	}
	// The peer encodes with the negotiated counts: data shards claim
	// p.data (1 without parity), parity shards at most p.data and up to
	// p.maxParity (adaptive mode moves between 0 and it). Anything more is
	// dropped and counted, which bounds the codecs the peer can make this
	// side build and the memory a group may hold.
	if err := dec.SetLimits(fecLimits(p, max)); err != nil {
		return err
	}
	if p.adaptive && c.ep.set.congestion.gate {
		// Under a congestion controller adaptive mode starts at 0 and
		// adds parity only for loss the peer reports outside a queue
		// (takeLossReport): the configured start cost its share of the
		// smallest budgets, Startup's, before the first report
		// (TestBottleneckAdaptiveFEC: 84 parity shards on a clean path).
		if err := enc.SetParity(0); err == nil {
			p.parity = 0
		}
	}
	c.fec.params, c.fec.enc, c.fec.dec = p, enc, dec
	c.fecParity.Store(int64(enc.Parity()))
	c.setFECSized(!p.adaptive || enc.Parity() > 0)
	return nil
}

// fecLimits bounds a session's FEC decoder by the negotiated parameters.
func fecLimits(p fecParams, maxPacket int) fec.Limits {
	return fec.Limits{
		MaxData:   p.data,
		MaxParity: p.maxParity,
		MaxBytes:  fecBudgetGroups * (p.data + p.maxParity) * (maxPacket + fecParityExtra),
	}
}

// fecOutput sends one inner frame through the encoder when FEC is on.
//
// In adaptive mode at a parity count of 0 (a clean link) the frame goes as
// its own transport packet instead, as without FEC: a data shard in a group
// of its own would only add the shard header and the inner type byte
// (fec.HeaderSize+1 bytes a packet) and repair nothing. The receiver takes
// every inner frame type directly too (conn_recv.go). takeLossReport
// closes the group in progress before it lowers the count to 0, so no
// group is left open while frames bypass the encoder; a count raised again
// starts a new group with the next frame.
func (c *Conn) fecOutput(pkt []byte) {
	f := &c.fec
	if f.params.adaptive && f.enc.Parity() == 0 {
		c.countFECData()
		c.sendFrame(pkt[0], pkt[wire.FrameHeaderSize:])
		return
	}
	if err := f.enc.Encode(pkt, c.shard.now, c.emitShard); err != nil {
		c.ep.log.Debug("uxp: fec encode", "session", c.id, "err", err)
	}
}

// countFECData counts a frame meant for FEC that goes as its own packet
// as a data shard (a group of one without the header): FECStats and
// parityPays count the data FEC carried.
func (c *Conn) countFECData() {
	c.traffic.fecDataOut.Add(1)
	c.shard.traffic.fecDataOut.Add(1)
}

// emitShard sends one shard; sendFrame copies it, as the encoder requires.
func (c *Conn) emitShard(shard []byte) {
	if fec.IsParity(shard) {
		c.pacedExtra(len(shard)+wire.FrameHeaderSize, false) // the data shards were charged as they were written
		c.traffic.fecParityOut.Add(1)
		c.shard.traffic.fecParityOut.Add(1)
	} else {
		c.traffic.fecDataOut.Add(1)
		c.shard.traffic.fecDataOut.Add(1)
	}
	if h := c.ep.set.hooks.dropShard; h != nil && h(shard) {
		return
	}
	c.sendFrame(wire.FrameFEC, shard)
}

// fecInput hands one authenticated shard to the decoder; packets it yields
// go to KCP.
func (c *Conn) fecInput(shard []byte, now time.Time) {
	d := c.fec.dec
	if d == nil {
		c.drop(dropMalformed) // FEC frames on a session without FEC
		return
	}
	before := d.Stats()
	if err := d.Decode(shard, now, c.fecDeliver); err != nil {
		c.drop(dropMalformed)
	}
	c.noteFECStats(before, d.Stats())
	if c.fec.expireAt.IsZero() && d.Groups() > 0 {
		c.fec.expireAt = now.Add(fecMaxAge / 2)
	}
}

// fecDeliver takes one packet out of the decoder: an inner frame (type
// byte, then body) of type 1, 10, 11 or 12.
func (c *Conn) fecDeliver(pkt []byte, recovered bool) {
	typ := kcp.IKCP_PACKET_REGULAR
	if recovered {
		typ = kcp.IKCP_PACKET_FEC
	}
	if len(pkt) < wire.FrameHeaderSize {
		c.drop(dropMalformed)
		return
	}
	body := pkt[wire.FrameHeaderSize:]
	switch pkt[0] {
	case wire.FrameKCP:
		c.laneInput(0, body, 0, typ) // no room: the decoder may keep pkt
	case wire.FrameLane:
		c.laneFrameInput(body, 0, typ)
	case wire.FrameDatagram, wire.FrameLatest:
		c.datagramInput(pkt[0], body)
	default:
		c.drop(dropMalformed)
	}
}

func (c *Conn) noteFECStats(before, after fec.DecoderStats) {
	t, s := &c.traffic, &c.shard.traffic
	add := func(a, b *trafficCounter, d uint64) {
		if d > 0 {
			a.Add(d)
			b.Add(d)
		}
	}
	add(&t.fecDataIn, &s.fecDataIn, after.DataShards-before.DataShards)
	add(&t.fecParityIn, &s.fecParityIn, after.ParityShards-before.ParityShards)
	add(&t.fecRecovered, &s.fecRecovered, after.Recovered-before.Recovered)
	add(&t.fecExpired, &s.fecExpired, after.Expired-before.Expired)
}

// fecTimers flushes a partial group whose delay ran out, expires old
// incomplete groups, and measures (and in adaptive mode reports) loss.
func (c *Conn) fecTimers(now time.Time) {
	f := &c.fec
	if f.enc != nil {
		if d := f.enc.Deadline(); !d.IsZero() && !now.Before(d) {
			f.enc.Flush(now, c.emitShard)
		}
	}
	if f.dec != nil && !f.expireAt.IsZero() && !now.Before(f.expireAt) {
		before := f.dec.Stats()
		f.dec.Expire(now)
		c.noteFECStats(before, f.dec.Stats())
		f.expireAt = time.Time{}
		if f.dec.Groups() > 0 {
			f.expireAt = now.Add(fecMaxAge / 2)
		}
	}
	if f.params.adaptive {
		c.lossTick(now)
	}
}

// lossTick measures inbound loss once per lossReportInterval. Adaptive
// sessions call it from their timer, so the peer gets a report even when
// nothing arrives; the others only as authenticated packets arrive
// (receive), so that an idle session has no loss timer at all (at 10k
// sessions that is 20k timer events a second saved).
func (c *Conn) lossTick(now time.Time) {
	f := &c.fec
	if !now.Before(f.reportAt) {
		f.reportAt = now.Add(lossReportInterval)
		c.measureLoss()
	}
}

// fecDeadline is the earliest FEC timer, or zero if none is due.
func (c *Conn) fecDeadline() time.Time {
	var d time.Time
	if c.fec.params.adaptive {
		d = earlier(d, c.fec.reportAt)
	}
	if c.fec.enc != nil {
		d = earlier(d, c.fec.enc.Deadline())
	}
	d = earlier(d, c.fec.expireAt)
	return d
}

// measureLoss computes the inbound loss since the last measurement from the
// peer's packet counters (which have no gaps on the sending side), and
// tells the peer in adaptive mode.
func (c *Conn) measureLoss() {
	f := &c.fec
	maxCtr := c.replay.Max()
	got := c.traffic.packetsIn.Load()
	expected := maxCtr - f.lastMax
	received := got - f.lastPackets
	f.lastMax, f.lastPackets = maxCtr, got
	if expected == 0 || expected > 1<<31 {
		return
	}
	loss := 0.0
	if received < expected {
		loss = float64(expected-received) / float64(expected)
	}
	c.lossIn.Store(int64(loss * 10000))
	if f.params.adaptive {
		var b [wire.LossSize]byte
		wire.PutLoss(b[:], wire.Loss{Loss: uint16(loss * 10000), Expected: uint32(expected)})
		c.sendFrame(wire.FrameLoss, b[:])
		c.traffic.lossReports.Add(1)
	}
}

// takeLossReport adapts the parity count to the loss the peer sees.
func (c *Conn) takeLossReport(r wire.Loss) {
	loss := float64(r.Loss) / 10000
	if loss > 1 {
		c.drop(dropMalformed)
		return
	}
	c.lossOut.Store(int64(loss * 10000))
	f := &c.fec
	if !f.params.adaptive || f.enc == nil {
		return
	}
	// Rise fast, decay slowly: a burst of loss should get parity at once,
	// and one clean interval should not take it all away.
	if loss > f.peerLoss {
		f.peerLoss = loss
	} else {
		f.peerLoss = 0.7*f.peerLoss + 0.3*loss
	}
	p := parityFor(f.params.data, f.params.maxParity, f.peerLoss)
	if !c.parityPays(c.shard.now) {
		p = 0
	}
	if c.queueing() {
		// Congestion loss: the queue in front of the bottleneck
		// overflows. Parity would add to the load that overflows it, so
		// the parity count may fall but not rise (cc_gate.go).
		p = min(p, f.enc.Parity())
	}
	if p != f.enc.Parity() {
		if p == 0 {
			// Frames bypass the encoder from now on (fecOutput):
			// finish the group in progress, with parity for the data
			// shards it has.
			f.enc.Flush(c.shard.now, c.emitShard)
		}
		if err := f.enc.SetParity(p); err == nil {
			c.fecParity.Store(int64(p))
		}
	}
	c.sizeForParity(f.enc.Parity())
}

// parityPays reports whether parity would repair a loss sooner than a tail
// probe (internal/arq probe.go) does, which is when adaptive mode spends
// bytes on it.
// Parity repairs a loss once its group is complete: after the group fills,
// or after the group delay for sparse traffic. A probe repairs it one probe
// timeout after the last send. On a short path the probe wins and costs
// only the lost packets, where parity for a one-packet group doubles the
// bytes of every packet; WebRTC's NACK/FEC hybrid makes the same choice
// below about 20 ms of RTT. Without an RTT estimate yet, parity pays.
func (c *Conn) parityPays(now time.Time) bool {
	f := &c.fec
	sent := c.traffic.fecDataOut.Load()
	fill := c.ep.set.fecGroupDelay
	if fill < 0 {
		fill = math.MaxInt64 // partial groups wait for their last shard
	}
	if el := now.Sub(f.rateAt); !f.rateAt.IsZero() && el > 0 && sent > f.rateData {
		perSecond := float64(sent-f.rateData) / el.Seconds()
		fill = min(fill, time.Duration(float64(f.params.data)/perSecond*float64(time.Second)))
	}
	f.rateAt, f.rateData = now, sent
	pto := c.pto()
	return pto == 0 || pto > fill
}

// parityFor returns the smallest parity count, up to max, for which a group
// of data+parity shards fails to decode (loses more than parity shards)
// with probability below fecTargetFailure at independent loss rate p.
// Below 0.1% loss it is zero: a clean link pays no parity.
func parityFor(data, max int, p float64) int {
	if p < 0.001 {
		return 0
	}
	for parity := 1; parity <= max; parity++ {
		if binomialTail(data+parity, parity, p) < fecTargetFailure {
			return parity
		}
	}
	return max
}

// binomialTail is P(X > k) for X ~ Binomial(n, p).
func binomialTail(n, k int, p float64) float64 {
	cdf := 0.0
	for i := 0; i <= k; i++ {
		lg := lgammaInt(n+1) - lgammaInt(i+1) - lgammaInt(n-i+1)
		cdf += math.Exp(lg + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return max(0, 1-cdf)
}

func lgammaInt(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}
