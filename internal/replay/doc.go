// Package replay implements the receive-side anti-replay window of RFC 6479
// for the per-direction packet counters of a uxp session.
//
// It follows the design of wireguard-go's replay package: a ring of 128
// 64-bit blocks, one bit per counter, with whole blocks cleared as the window
// slides forward, so that both in-order and out-of-order packets cost O(1)
// and advancing by any distance costs at most 128 word stores.
//
// The package is pure code: no I/O, no goroutines, no allocation.
//
// # Usage
//
// A packet's counter is checked twice around decryption:
//
//	if !w.Check(counter) { drop: replayed or too old } // cheap, no state change
//	payload, err := aead.Open(buf[:0], counter, ct, header)
//	if err != nil { drop: forged } // the window has not moved
//	if !w.Accept(counter) { drop: raced with a duplicate }
//
// Only Accept changes the window, and it must only be called for a packet
// that authenticated. Otherwise a forged packet carrying a huge counter would
// slide the window forward and make every genuine packet look too old.
//
// # Concurrency
//
// A Window is not safe for concurrent use. In uxp it is owned by the worker
// shard goroutine that owns the session, next to the session's receive AEAD.
//
// # Limitations
//
// Counters more than [WindowSize] behind the highest accepted counter are
// rejected even if they were never seen; on a path that reorders by more
// than 8128 packets they are lost and must be retransmitted. Counters at or
// above [RejectAfter] are always rejected; the sender must rekey before it
// gets there.
//
// # Security
//
// The window alone does not stop replays across keys: a Window belongs to
// one receive key and must be [Window.Reset] (or replaced) whenever that key
// changes.
package replay
