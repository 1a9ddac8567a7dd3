package uxp

import (
	"net"
	"sync/atomic"
	"time"
)

// DropStats counts datagrams that were dropped without a reply, by reason.
type DropStats struct {
	// Malformed: too short, unknown type, bad reserved bits, bad frame, or a
	// handshake message of the wrong size.
	Malformed uint64
	// AuthFailed: the AEAD tag or a handshake MAC did not verify.
	AuthFailed uint64
	// Replay: a packet counter already seen, or too old for the replay
	// window.
	Replay uint64
	// UnknownSession: a transport packet for a session ID that does not
	// exist (any more).
	UnknownSession uint64
	// Overload: a worker's or the handshake queue was full. KCP retransmits
	// data that was dropped this way.
	Overload uint64
	// RateLimited: a handshake initiation (with a valid mac2) dropped by
	// the per-source rate limit while the server was under load; the same
	// count as HandshakeStats.RateLimited.
	RateLimited uint64
	// RecvBound counts KCP data segments, not datagrams, left out because
	// they lay beyond the receive window this side advertised or the
	// session's receive budget (internal/arq bounds.go). The sender
	// retransmits them; a conforming sender rarely meets either bound.
	RecvBound uint64
}

func (d *DropStats) add(o DropStats) {
	d.Malformed += o.Malformed
	d.AuthFailed += o.AuthFailed
	d.Replay += o.Replay
	d.UnknownSession += o.UnknownSession
	d.Overload += o.Overload
	d.RateLimited += o.RateLimited
	d.RecvBound += o.RecvBound
}

// Total is the sum of all drop reasons.
func (d DropStats) Total() uint64 {
	return d.Malformed + d.AuthFailed + d.Replay + d.UnknownSession + d.Overload + d.RateLimited + d.RecvBound
}

// ConnStats is a snapshot of one session's counters.
type ConnStats struct {
	BytesSent, BytesReceived       uint64 // UDP payload bytes
	PacketsSent, PacketsReceived   uint64 // authenticated datagrams
	MessagesSent, MessagesReceived uint64
	// Retransmissions counts KCP data segments sent more than once, tail
	// probes included.
	Retransmissions uint64
	// TailProbes counts data segments resent because no acknowledgement
	// came within one probe timeout (internal/arq probe.go).
	TailProbes uint64
	// WindowProbes counts window probes sent while the peer advertised a
	// closed receive window and data was waiting (internal/arq
	// wndprobe.go).
	WindowProbes uint64
	// RTT and RTTVar are the smoothed round-trip time and its variation
	// (RFC 6298). The handshake's round trip is the first sample, so both
	// are set when OnReady runs (a client times its last initiation to the
	// response, a server its last response to the client's first packet);
	// heartbeats give the later ones: clients time their pings, servers
	// their pongs, from the server time and hold time the next ping
	// echoes.
	RTT, RTTVar time.Duration
	// Latency is the distribution of message delivery latency for the
	// messages this side sent: from the message entering KCP until the peer
	// had all of it in order, estimated on this side's clock with the
	// heartbeat RTT (see internal/arq latency.go and
	// docs/architecture.md). A bulk sender's messages are sampled, not all
	// recorded.
	Latency Histogram
	// SendQueueBytes is how much the session holds for sending.
	SendQueueBytes int
	// SendQueueDelay is how long the oldest byte a StreamConn wrote and
	// the session has not sent yet (posted, or behind a full send window)
	// has been waiting: the time data spends queued on this side, in the
	// spirit of TCP_NOTSENT_LOWAT. Measured when the writer last wrote or
	// the queue last changed (stream_send.go). Zero when nothing waits,
	// and for sessions used through Conn.Write, which see their backlog in
	// SendQueueBytes.
	SendQueueDelay time.Duration
	// Congestion is the congestion controller's view: its bandwidth
	// estimate, pacing rate, window, RTTs and state (congestion.go).
	Congestion CongestionStats
	// HeldBytes estimates the memory the session holds for data in
	// transit: SendQueueBytes plus kcp-go's buffer (1500 bytes) for every
	// segment its lanes hold, sent and unacknowledged, waiting for
	// window, or received and not yet delivered. A small message costs a
	// whole segment buffer until it is acknowledged. Updated by the
	// session's worker after each event.
	HeldBytes int
	Drops     DropStats
	Cipher    Cipher
	// LossIn is the fraction of the peer's packets that did not arrive,
	// measured from gaps in their counters over the last interval of about
	// 500 ms that saw packets (it keeps its value while none arrive). LossOut
	// is the fraction of ours lost: as the peer measured it in adaptive FEC
	// mode, else the data segments retransmitted per data segment sent
	// over the last interval of about 500 ms that sent data (a spurious
	// retransmission counts as a loss).
	LossIn, LossOut float64
	FEC             FECStats
	// Handshake counts cookies and stateless resets this client received.
	Handshake HandshakeStats
	// Migrations counts moves of the session to a new, validated peer
	// address (server sessions only; see MigrationHandler). RemoteAddr is
	// the current peer address.
	Migrations uint64
	RemoteAddr net.Addr
	// Rekeys counts completed key rotations (Config.RekeyAfterTime,
	// Config.RekeyAfterPackets).
	Rekeys uint64
	// SendsTooBig counts this session's datagrams the kernel refused to
	// send as larger than the interface allows (EMSGSIZE). uxp's sockets
	// never fragment (a *net.UDPConn is set so on Linux), so such a
	// datagram is dropped, alone: path MTU discovery's probes larger than
	// the path are the usual ones, and their loss is the search's answer.
	SendsTooBig uint64
	// Lanes holds one entry per lane of Config.Lanes (lanes.go), lane 0
	// first. MessagesSent and MessagesReceived above are their totals.
	Lanes []LaneStats
	// Datagrams counts unreliable datagrams (datagram.go).
	Datagrams DatagramStats
	// Unhandled counts messages that arrived for a handler without the
	// method that takes them (unhandled.go).
	Unhandled UnhandledStats
}

// ServerStats is a snapshot of a Server's counters.
type ServerStats struct {
	Sessions                       int    // live, established sessions
	HalfOpen                       int    // handshakes answered, awaiting the client's first packet
	SessionsAccepted               uint64 // sessions announced through OnNewConnComing
	HandshakesCompleted            uint64 // responses sent for new initiations (see HandshakesConfirmed)
	HandshakesRefused              uint64 // authenticated refusals (FEC policy)
	BytesSent, BytesReceived       uint64
	PacketsSent, PacketsReceived   uint64
	MessagesSent, MessagesReceived uint64
	Retransmissions                uint64
	TailProbes                     uint64 // see ConnStats.TailProbes
	// SendQueueBytes is the sum of the live sessions' send queues, and
	// HeldBytes of their ConnStats.HeldBytes.
	SendQueueBytes, HeldBytes int
	// Latency merges every session's delivery latency histogram, closed
	// sessions included.
	Latency    Histogram
	Drops      DropStats
	FEC        FECStats
	Handshake  HandshakeStats
	Migrations uint64 // sessions moved to a validated new client address
	Rekeys     uint64 // key rotations completed, summed over sessions
	// SendsTooBig counts datagrams the kernel refused to send as larger
	// than the interface allows, summed over sessions (ConnStats).
	SendsTooBig uint64
	// TimerEvents counts session timer runs on the workers: each is one
	// wake of one session for a deadline (retransmission, probe, ACK
	// delay, heartbeat, idle, rekey, ...). TimerFlushes counts the KCP
	// flushes those runs made because a retransmission timeout had come.
	// Together they show the timer work per session (issue 18).
	TimerEvents, TimerFlushes uint64
	// KCPFastPath reports whether the sessions drive kcp-go through
	// internal/kcpx's fast path (linked flush, shared memory, resend-time
	// scheduling), which runs only on an audited kcp-go version. False:
	// kcp-go's public API (sends wait for KCP's interval tick, more memory
	// per session), and a warning was logged once.
	KCPFastPath bool
	// RekeysDeferred counts rekeys a worker postponed because it was
	// behind or its rekey budget for the second was spent (rekey_sched.go):
	// rekeys it would have started, and peers' rekey inits it left
	// unanswered for their retransmission.
	RekeysDeferred uint64
	// HandshakesConfirmed counts handshakes the client completed: its
	// first transport packet authenticated. Each is then announced, or
	// refused if the server filled up meanwhile (Handshake.RefusedFull).
	// HandshakesCompleted, despite its name, counts responses sent.
	HandshakesConfirmed uint64
	// HandshakeLatency is the distribution of confirmed handshakes'
	// durations: from the handshake loop taking the initiation (after any
	// wait in its queue) to the client's first transport packet, that is
	// one round trip plus the server's Diffie-Hellman and the client's
	// work.
	HandshakeLatency Histogram
	// RTT is the distribution of the live sessions' smoothed RTTs
	// (ConnStats.RTT), sessions without a sample yet left out.
	RTT Histogram
	// SessionsClosed counts ended sessions by close reason, one entry per
	// CloseReasons name. Half-open sessions that expired unconfirmed are
	// not counted; those closed because the server filled up are.
	SessionsClosed []CloseCount
	// CallbackPanics counts panics of application callbacks that the
	// Server recovered (a panicking AuthorizeClient refuses the client; a
	// panicking session callback ends that session with a
	// *CallbackPanicError). Each is also logged with its stack.
	CallbackPanics uint64
	// Unhandled totals the sessions' ConnStats.Unhandled, closed sessions
	// included.
	Unhandled UnhandledStats
}

// dropCounters is the concurrently readable form of DropStats.
type dropCounters struct {
	malformed, authFailed, replay, unknownSession, overload, rateLimited, recvBound atomic.Uint64
}

func (d *dropCounters) snapshot() DropStats {
	return DropStats{
		Malformed:      d.malformed.Load(),
		AuthFailed:     d.authFailed.Load(),
		Replay:         d.replay.Load(),
		UnknownSession: d.unknownSession.Load(),
		Overload:       d.overload.Load(),
		RateLimited:    d.rateLimited.Load(),
		RecvBound:      d.recvBound.Load(),
	}
}

type dropReason uint8

const (
	dropMalformed dropReason = iota
	dropAuthFailed
	dropReplay
	dropUnknownSession
	dropOverload
	dropRateLimited
	dropRecvBound
)

func (d *dropCounters) inc(r dropReason) {
	switch r {
	case dropMalformed:
		d.malformed.Add(1)
	case dropAuthFailed:
		d.authFailed.Add(1)
	case dropReplay:
		d.replay.Add(1)
	case dropUnknownSession:
		d.unknownSession.Add(1)
	case dropOverload:
		d.overload.Add(1)
	case dropRateLimited:
		d.rateLimited.Add(1)
	case dropRecvBound:
		d.recvBound.Add(1)
	}
}

type trafficCounter = atomic.Uint64

// trafficCounters are written by one owner (a shard) and read by Stats.
type trafficCounters struct {
	bytesOut, bytesIn, packetsOut, packetsIn, msgsOut, msgsIn, retrans, probes, wndProbes trafficCounter

	fecDataOut, fecParityOut, fecDataIn, fecParityIn, fecRecovered, fecExpired trafficCounter

	migrations, rekeys trafficCounter

	// sendsTooBig counts datagrams the kernel refused with EMSGSIZE
	// (sendbatch.go).
	sendsTooBig trafficCounter

	// Timer work (shard.go, internal/kcpx SendWork, rekey_sched.go).
	timerEvents, timerFlushes, rekeysDeferred trafficCounter
	// timerCuts counts runTimers calls that left due timers for a later
	// slice (tests).
	timerCuts trafficCounter
	// lossReports counts the loss reports adaptive FEC sent (tests).
	lossReports trafficCounter
}

func (t *trafficCounters) fecStats() FECStats {
	return FECStats{
		DataShardsSent:     t.fecDataOut.Load(),
		ParityShardsSent:   t.fecParityOut.Load(),
		DataShardsReceived: t.fecDataIn.Load(),
		ParityShardsRecv:   t.fecParityIn.Load(),
		Recovered:          t.fecRecovered.Load(),
		ExpiredGroups:      t.fecExpired.Load(),
	}
}

// FECStats counts forward error correction work.
type FECStats struct {
	// DataShardsSent counts the data packets sent with FEC on, including
	// those that adaptive mode at parity 0 sends as plain packets outside
	// any group; ParityShardsSent the parity packets.
	DataShardsSent, ParityShardsSent     uint64
	DataShardsReceived, ParityShardsRecv uint64
	// Recovered counts packets rebuilt from parity instead of waiting for a
	// retransmission.
	Recovered uint64
	// ExpiredGroups counts groups dropped while still missing data (more
	// losses than parity); KCP retransmits their packets.
	ExpiredGroups uint64
	// Parity is the current parity count per group (ConnStats only).
	Parity int
}

func (f *FECStats) add(o FECStats) {
	f.DataShardsSent += o.DataShardsSent
	f.ParityShardsSent += o.ParityShardsSent
	f.DataShardsReceived += o.DataShardsReceived
	f.ParityShardsRecv += o.ParityShardsRecv
	f.Recovered += o.Recovered
	f.ExpiredGroups += o.ExpiredGroups
}

func (t *trafficCounters) addTo(s *ServerStats) {
	s.BytesSent += t.bytesOut.Load()
	s.BytesReceived += t.bytesIn.Load()
	s.PacketsSent += t.packetsOut.Load()
	s.PacketsReceived += t.packetsIn.Load()
	s.MessagesSent += t.msgsOut.Load()
	s.MessagesReceived += t.msgsIn.Load()
	s.Retransmissions += t.retrans.Load()
	s.TailProbes += t.probes.Load()
	s.Migrations += t.migrations.Load()
	s.Rekeys += t.rekeys.Load()
	s.TimerEvents += t.timerEvents.Load()
	s.TimerFlushes += t.timerFlushes.Load()
	s.RekeysDeferred += t.rekeysDeferred.Load()
	s.SendsTooBig += t.sendsTooBig.Load()
	s.FEC.add(t.fecStats())
}
