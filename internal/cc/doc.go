// Package cc holds uxp's congestion control: the [Controller] interface
// and its implementations ([BBRController], the default, model-based one;
// [CubicController] for comparison; [NoneController], no control), the
// [Pacer] that spreads packets at a controller's rate, and the receiver's
// [AckPolicy] (ACK thinning).
//
// Everything here is a pure protocol core: no I/O, no goroutines, no
// clock. Every time-dependent method takes now, read once per event by the
// goroutine that owns the session and monotonic.
//
// # Usage
//
// One Controller and one Pacer per session, owned by the session's shard:
//
//	c, err := cc.New(cc.BBR, cc.Config{MSS: mtu, Seed: sessionID})
//	p := cc.NewPacer(mtu)
//
//	// Before each packet:
//	if !c.CanSend(inflight) { wait for an ACK }
//	if at := p.NextSendTime(now, size); at.After(now) { arm the timer heap for at }
//	st := c.OnPacketSent(now, size, inflight) // store st with the packet
//	p.OnSent(now, size)
//	inflight += size
//
//	// On each ACK: remove the acked and lost packets from inflight, then
//	c.OnAck(now, cc.AckEvent{Acked: ackedStates, Lost: lostStates, Inflight: inflight})
//	p.SetRate(now, c.PacingRate())
//
//	// On the receiver:
//	if pol.OnPacket(now, pn, size, lastOfBurst) { send an ACK; pol.OnAckSent() }
//	else { arm the timer heap for pol.Deadline() }
//
// # Concurrency
//
// No type here is safe for concurrent use. Each belongs to the goroutine
// that owns its session (in uxp, the worker shard).
//
// # Limitations
//
// Every uxp session runs a Controller (BBR unless configured otherwise)
// and, unless it is None, a Pacer and an AckPolicy (cc_gate.go; see
// docs/architecture.md, "Congestion control and pacing"). BBRController
// does not implement the draft's ACK-aggregation cwnd term, idle restart or
// its RTO recovery handling; with two or more BBR flows on one bottleneck a
// standing queue of about half the buffer remains (shares are fair, drops
// low). CubicController lacks HyStart++ and spurious-loss undo.
//
// # Security
//
// A peer controls which packets it acknowledges and when. A receiver that
// acknowledges packets it never got (optimistic ACKs) inflates the
// delivery rate and so the sender's rate toward it, as with any
// ACK-clocked protocol; uxp's ACKs are authenticated, so only the peer
// itself can do this, not an on-path attacker. The controller bounds its
// state by construction: it keeps no per-packet storage (the sender does)
// and its counters are 64-bit.
package cc
