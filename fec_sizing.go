package uxp

// Segment sizing under FEC. A frame that goes through the FEC encoder
// travels as a shard: 13 bytes longer (fecFraming). A session whose frames
// go through the encoder has its lanes' KCPs build segments that leave
// that room in the packet; one whose frames go directly (no FEC, or
// adaptive FEC at a parity count of 0, fecOutput) builds them for the
// full frame room, as without FEC. Fixed FEC reserves the room for the
// whole session. Adaptive FEC moves between the two sizes with its parity
// count:
//
//   - when the count rises above 0 the KCP MTU comes down at once, so the
//     next segments KCP builds fit a shard;
//   - when it has been 0 for fecGrowReports loss reports in a row the KCP
//     MTU goes back up: a loss estimate flapping around the threshold of
//     parity leaves the segments at the smaller size rather than flipping
//     it every report.
//
// Segments KCP built at the larger size before it came down are still in
// its send buffer, and KCP retransmits a segment as it was built. Such a
// frame, too large for a shard, goes directly, outside FEC (emitFrame,
// emitKCP): the wire allows every inner frame type directly (section 9 of
// docs/protocol.md), so this is a local choice of the sender, not a wire
// change. Path MTU discovery changes the KCP MTU the same way
// (pathMTUChanged, Conn.kcpMTU): both read the packet size and fecSized.
//
// The bounds that assume the smallest segments (MaxMessageSize within 255
// fragments, minMSS) take the FEC room as reserved (settings.mssAt), which
// is never larger than what a session uses.

/* Implementation constants */
const (
	// fecGrowReports is how many loss reports in a row (at
	// lossReportInterval, 2 s) an adaptive session's parity count must
	// be 0 before its segments grow back to the full frame room.
	fecGrowReports = 4
)

// fecShards reports whether a frame sent with viaFEC goes through the FEC
// encoder now: FEC is on, and not adaptive at a parity count of 0
// (fecOutput).
func (c *Conn) fecShards() bool {
	f := &c.fec
	return f.enc != nil && !(f.params.adaptive && f.enc.Parity() == 0)
}

// setFECSized sizes the lanes' segments with the FEC room reserved or
// not, at the current packet size.
func (c *Conn) setFECSized(on bool) {
	if c.fecSized.Load() == on {
		return
	}
	c.fecSized.Store(on)
	c.arq.SetMTU(c.kcpMTU()) // keeps the shard's flush buffer
}

// sizeForParity applies an adaptive session's parity count, after each
// loss report, to its segment size, with the hysteresis above.
func (c *Conn) sizeForParity(parity int) {
	f := &c.fec
	switch {
	case parity > 0:
		f.cleanReports = 0
		c.setFECSized(true)
	case c.fecSized.Load():
		f.cleanReports++
		if f.cleanReports >= fecGrowReports {
			f.cleanReports = 0
			c.setFECSized(false)
		}
	}
}

// fullSlack is arq.Config.FullSlack for a side configured for FEC: the
// peer's full-size segments may be fecFraming bytes shorter than this
// side's (one of the two adds parity, the other not).
func fullSlack(s *settings) int {
	if s.fecConfigured() {
		return fecFraming
	}
	return 0
}
