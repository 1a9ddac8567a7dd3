package replay

// Implementation constants. The ring geometry is the one wireguard-go uses.
const (
	blockShift = 6               // log2(blockBits)
	blockBits  = 1 << blockShift // counters per block (bits in a uint64)
	bitMask    = blockBits - 1   // counter bits selecting the bit in a block
	ringBlocks = 128             // blocks in the ring; a power of two
	blockMask  = ringBlocks - 1  // block-index bits selecting the ring slot
)

const (
	// WindowSize is how far behind the highest accepted counter a counter
	// may be and still be accepted (if not seen before): counter c is in
	// the window when Max()-WindowSize <= c <= Max(). It is one block short
	// of the ring's 128*64 = 8192 bits, because the block holding Max() is
	// only partly in use. Implementation choice.
	WindowSize = (ringBlocks - 1) * blockBits // 8128

	// RejectAfter is the first counter that is always rejected, even by
	// a fresh Window. It is WireGuard's RejectAfterMessages,
	// 2^64 - 2^13 - 1, which keeps the top of the counter space (more than
	// a window's worth) unused so a sender can never wrap its counter into
	// the window. Implementation choice; senders must rekey well before.
	RejectAfter = 1<<64 - 1<<13 - 1
)

// Window is an RFC 6479 sliding anti-replay window over 64-bit packet
// counters. The zero value is an empty window, ready to use, that accepts
// every counter from 0 up to (but excluding) RejectAfter.
//
// A Window is not safe for concurrent use; see the package documentation.
type Window struct {
	// last is the highest counter accepted so far, 0 if none.
	last uint64
	// ring holds one bit per counter. Counter c lives in bit c&bitMask of
	// ring[(c>>blockShift)&blockMask]. Blocks in front of last's block are
	// zero, which is what lets Check accept any counter above last without
	// reading the ring.
	ring [ringBlocks]uint64
}

// Reset empties the window, as if it had just been declared. Call it when
// the receive key changes.
func (w *Window) Reset() {
	// wireguard-go clears only the first block, which suffices because every
	// other block is cleared before it is used again; clearing all 1 KiB
	// makes the invariant on ring obvious and costs nothing at rekey rate.
	*w = Window{}
}

// Max returns the highest counter accepted so far. For a window that has
// accepted nothing it returns 0, the same as after accepting only 0; use
// Check(0) to tell the two apart if it matters.
func (w *Window) Max() uint64 {
	return w.last
}

// Next returns the counter expected next: one above Max, or 0 for a
// window that has accepted nothing. A receiver rebuilds a truncated
// counter around it.
func (w *Window) Next() uint64 {
	if w.last == 0 && w.ring[0]&1 == 0 {
		return 0
	}
	return w.last + 1
}

// Check reports whether Accept(counter) would return true now. It does not
// change the window, so it can run before decryption on unauthenticated
// counters.
func (w *Window) Check(counter uint64) bool {
	switch {
	case counter >= RejectAfter:
		return false
	case counter > w.last:
		// Ahead of the window: never seen (see the ring invariant).
		return true
	case w.last-counter > WindowSize:
		// Too old to tell whether it was seen.
		return false
	}
	return w.ring[(counter>>blockShift)&blockMask]&(1<<(counter&bitMask)) == 0
}

// Accept checks counter and, if it is acceptable, records it and returns
// true. It returns false for a counter that was already accepted, that is
// more than WindowSize behind Max, or that is at least RejectAfter. Call it
// only for packets that authenticated.
func (w *Window) Accept(counter uint64) bool {
	if counter >= RejectAfter {
		return false
	}
	block := counter >> blockShift
	if counter > w.last {
		// Slide forward: clear every block between last's block (exclusive)
		// and counter's block (inclusive), at most the whole ring.
		current := w.last >> blockShift
		n := min(block-current, ringBlocks)
		for i := uint64(1); i <= n; i++ {
			w.ring[(current+i)&blockMask] = 0
		}
		w.last = counter
	} else if w.last-counter > WindowSize {
		return false
	}
	slot := &w.ring[block&blockMask]
	bit := uint64(1) << (counter & bitMask)
	if *slot&bit != 0 {
		return false
	}
	*slot |= bit
	return true
}
