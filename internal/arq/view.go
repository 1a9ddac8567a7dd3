package arq

import kcp "github.com/xtaci/kcp-go/v5"

// View is a lane's internal state, for tests of this package's users.
type View struct {
	KCP          *kcp.KCP // nil until the lane is first used
	WaitSnd      int      // segments its KCP holds for sending
	Backlog      int      // messages not admitted yet
	Inflight     int      // messages admitted and not acknowledged
	InflightCap  int      // capacity of that list
	TrackerSlots int      // the delivery tracker's ring
	SndSN        uint32   // sn of the lane's next segment
	AckWalks     uint64   // send-buffer segments first ACKs made KCP walk (bounds.go)
	TrimArmed    bool     // a memory trim is armed (trim.go)
	PeerUna      uint32   // the highest una the peer sent: every sn below it is acknowledged
	PeerWnd      uint16   // the window in the peer's latest segment
}

// View returns lane's internal state (tests).
func (ls *Lanes) View(lane int) View {
	l := ls.lanes[lane]
	return View{
		KCP: l.arq, WaitSnd: l.waitSnd(), Backlog: len(l.backlog),
		Inflight: len(l.inflight), InflightCap: cap(l.inflight), TrackerSlots: len(l.lat.ring),
		SndSN: l.sndSN, AckWalks: l.ackWalks, TrimArmed: !l.trimAt.IsZero(),
		PeerUna: l.sndUna, PeerWnd: l.wnd.peerWnd,
	}
}

// MakeKCP returns lane's KCP, making it if the lane was never used
// (tests).
func (ls *Lanes) MakeKCP(lane int) *kcp.KCP { return ls.kcp(ls.lanes[lane]) }

// SetMessageCounts sets lane's message counts, SentMessages and
// ReceivedMessages (tests of the close frame).
func (ls *Lanes) SetMessageCounts(lane int, sent, received uint32) {
	ls.lanes[lane].sndMsgs, ls.lanes[lane].rcvMsgs = sent, received
}
