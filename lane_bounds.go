package uxp

import (
	"github.com/uxp-go/uxp/internal/wire"
)

// Bounds on what a lane's peer can make its KCP spend (issue 13; the table
// in docs/security.md, "Reliability-layer and FEC bounds"): internal/arq
// bounds.go applies them; the settings below size them.

/* Implementation constants */
const (
	// kcpSegBuf is the buffer kcp-go copies every stored data segment
	// into (its mtuLimit), whatever the segment's length.
	kcpSegBuf = 1500

	// minMSS is the smallest MSS a conforming peer can have: the KCP
	// payload at the smallest MTU, with FEC and a lane byte (kcpMTUFor of
	// that frame room, less kcp-go's segment header).
	minMSS = minMTU - wire.TransportOverhead - fecFraming - laneIDSize + wire.RecordSaving - wire.SegmentHeaderSize

	// recvBudgetLanes is how many lanes' full receive windows the session's
	// receive budget holds (recvBudgetSegs). A conforming peer keeps at
	// most its SendWindow in flight over all lanes, and this side's
	// application reads every lane at once, so two windows leave room for
	// a peer whose window is as large as ours plus messages waiting for a
	// slow reader.
	recvBudgetLanes = 2
)

// maxFrag is the largest fragment number (frg, counting down to 0) a data
// segment may carry: a message of MaxMessageSize plus its lane header
// needs at most that many more segments of minMSS bytes.
func (s *settings) maxFrag() int {
	frags := (s.maxMessage + laneHeaderMax + minMSS - 1) / minMSS
	return min(frags, maxFragments) - 1
}

// recvSlack is how far past the end of its advertised window a lane still
// takes a data segment. kcp-go's sender takes the window from the latest
// packet to arrive and una from the highest seen (it does not track, as
// TCP's SND.WL1/WL2 do, which segment last set the window), so after
// reordering, or a packet recovered by FEC (which updates una, not the
// window), it pairs a newer una with an older, larger window, and
// overshoots by what entered the receive queue in between. A few segments
// do in practice (TestStreamMux); an eighth of the window covers it.
func (s *settings) recvSlack() uint32 { return uint32(max(1, s.recvWindow/8)) }

// recvBudgetSegs bounds the data segments the session's lanes store in
// total (beyond the one each lane expects next): min(lanes, 2) receive
// windows and their slack, at kcpSegBuf bytes each.
func (s *settings) recvBudgetSegs() int {
	return min(len(s.lanes), recvBudgetLanes) * (s.recvWindow + int(s.recvSlack()))
}

// recvHeldSegs is the data segments the session's lanes store.
func (c *Conn) recvHeldSegs() int { return c.arq.RecvHeld() }

// recvHeldBytes is the memory the session's lanes hold in received data
// segments (kcp-go's buffer per segment): at most recvBudgetSegs ×
// kcpSegBuf. Shard goroutine only.
func (c *Conn) recvHeldBytes() int { return c.recvHeldSegs() * kcpSegBuf }
