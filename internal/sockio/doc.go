// Package sockio is uxp's socket I/O: a UDP socket wrapper with
// allocation-free reads and writes, the per-event send batch, and the
// batched fast paths of Linux (recvmmsg with UDP GRO, sendmmsg with UDP
// GSO) behind a generic fallback that every platform can use.
//
// It knows nothing of sessions or of uxp's wire format: it moves datagrams
// between a socket and byte slices. Routing a datagram to its session is
// the caller's job.
//
// # Concurrency
//
// A Socket is safe for concurrent use, as its net.PacketConn is. A Reader
// is owned by one read loop goroutine; a Sender and a Batch by one shard
// goroutine. Senders of one socket share the GSO switch (an atomic.Bool).
//
// # Platforms
//
// The fast paths are behind file suffixes: batch_linux.go (recvmmsg),
// batch_send_linux.go (sendmmsg), gro_linux.go and gso_linux.go.
// batch_other.go is the fallback: NewReader and NewSender return nil, and
// the caller reads and writes one datagram per call through Socket.
//
// The package uses unsafe only to build the kernel's message and socket
// address structures.
package sockio
