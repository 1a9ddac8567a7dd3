// Package netsim simulates lossy networks in process, for tests and for the
// `uxp demo` command.
//
// One impairment model, [Impairment], describes a direction of a link: loss,
// duplication, reordering, delay, jitter, a blackhole, and a Drop hook that
// picks exact packets to lose. Two pieces apply it:
//
//   - [Wrap] impairs the packets written to a real net.PacketConn, such as a
//     loopback UDP socket in `uxp demo`.
//   - [Network] is an in-memory UDP network whose endpoints ([PacketConn])
//     implement net.PacketConn. It uses no sockets and works inside
//     testing/synctest bubbles, so delays cost no real time and tests are
//     deterministic.
//
// A bottleneck model, [Bottleneck], adds what [Impairment] lacks: a link
// rate in bits/s (optionally following a [RateStep] schedule), a FIFO queue
// with a byte or time limit and tail drop, and a propagation delay. It is
// pure (it takes now), so simulations can drive it directly, and
// [BottleneckConn] wraps it around any net.PacketConn for tests under
// synctest.
//
// # Usage
//
// In a test, build the network inside the synctest bubble:
//
//	synctest.Test(t, func(t *testing.T) {
//		n := netsim.NewNetwork(1)
//		defer n.Close()
//		a, _ := n.Listen("10.0.0.1:4000")
//		b, _ := n.Listen("10.0.0.2:4000")
//		n.SetLink(a.LocalAddr(), b.LocalAddr(), netsim.Impairment{Loss: 0.1, Delay: 20 * time.Millisecond})
//		// run the protocol over a and b ...
//	})
//
// Over a real socket:
//
//	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
//	// handle err
//	c := netsim.Wrap(pc, netsim.Impairment{Loss: 0.05, Delay: 30 * time.Millisecond}, seed)
//	defer c.Close()
//
// Randomness comes from a math/rand/v2 PCG seeded by the caller. The same
// seed and the same sequence of sends through the same impairments give the
// same drops, duplicates and delays, so a failing seed can be replayed. With
// several goroutines writing concurrently the sequence, and so the outcome,
// depends on scheduling.
//
// # Concurrency
//
// Every exported method is safe for concurrent use. A [Conn] owns one
// scheduler goroutine that writes delayed packets; Close stops and joins it.
// A [Network] starts no long-lived goroutine: packets without delay are
// delivered synchronously inside WriteTo, and delayed packets by a single
// time.AfterFunc timer that delivers them in due-time order. The Drop hook
// is called with no netsim lock held, on the writer's goroutine.
//
// # Limitations
//
//   - Only outgoing packets of a [Conn] are impaired; wrap both ends for a
//     two-way impaired link.
//   - Bandwidth and queueing exist only through [Bottleneck]; there is no
//     AQM (only tail drop), no MTU other than
//     [MaxDatagram], no ICMP errors, and no wildcard (0.0.0.0) binding: an
//     endpoint receives only datagrams addressed to its exact IP and port.
//   - Changing an impairment affects later packets only; packets already in
//     flight keep their delivery times.
//
// # Security
//
// The random source is not cryptographic and must never be used for keys,
// nonces or IDs. [Network.Inject] forges the source address of a datagram,
// so tests can check that the protocol rejects spoofed and replayed
// packets. This package is for tests and demos only.
package netsim
