// Package arq is uxp's reliability layer: a session's lanes, each a
// reliable, ordered message stream run by one kcp-go raw KCP state machine
// (made and driven through internal/kcpx, the only package that reaches
// into kcp-go's internals). A Lanes owns admission and priorities, the
// backlog, tail-loss and zero-window probes, message deadlines and skip
// markers, the bounds on what a peer's segments may make KCP spend, the
// delivery-latency tracker and the ring trim policy. The root package
// frames, seals and FEC-encodes what it emits (Output) and hands it the
// bodies of lane frames (Input).
//
// # Concurrency
//
// A Lanes is owned by one goroutine, the session's shard: every method
// must be called from it, and Output's methods are called on it, from
// inside those methods. The only exception are the counters LaneStats
// reads (Lanes.Stats), which are atomics.
//
// # Time
//
// The package never reads the clock. Every method that depends on time
// takes now, the monotonic time the owner's event began, and converts it
// to KCP's millisecond clock in one place (Lanes.kcpMs, by kcpx.Ms): the
// timestamps of the segments this layer forges (skip markers, probes) and
// every comparison with KCP's own timers use that value. kcp-go stamps its own
// segments from its package clock, time.Since(refTime), which kcpx.Ms
// computes for the instant now: the two agree exactly under
// testing/synctest (time does not move within an event) and lag by the
// event's running time otherwise, which can delay a timer by at most one
// millisecond. The RTT inputs (the heartbeat's smoothed RTT and variation,
// the probe timeout) come from Output.Timing; the peer's clock, which
// deadline messages carry, is converted by the caller (Output.PeerDeadline
// and Output.LocalClock).
//
// # Send side
//
// The caller decides when and how much the lanes send: Enqueue and Admit
// take a byte budget (NoLimit for the send window only), Flush and Timers
// report through Output the bytes they emit and which are
// retransmissions (Sent), and acknowledgements report the payload they
// confirm and the data RTT samples they give (Output.Acked), which a
// congestion controller's delivery-rate sampler can take. With
// SetController the lanes feed a cc.Controller themselves: every data
// segment sent, its state kept beside it by sn, acknowledgements and
// retransmissions as AckEvents and losses, the bytes in flight
// (congestion.go). When the ACKs owed go out is an AckPolicy.
//
// # Limitations
//
// The layer shadows part of KCP's state by parsing the segments KCP emits
// (sequence numbers, una, window) and forges or rewrites segments (skip
// markers, tail-loss and window probes): kcp-go exposes neither its send
// buffer nor its receive state.
package arq
