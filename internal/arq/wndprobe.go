package arq

import (
	"time"

	"github.com/uxp-go/uxp/internal/wire"
)

// Zero-window probes (TCP's persist timer).
//
// A receiver whose application stopped reading lets KCP's receive queue
// fill, and advertises a window of 0: the sender stops. When the
// application reads again, the receiver's KCP tells the new window once
// (a WINS segment). If that one packet is lost, the sender learns of the
// window only from its own KCP's next window probe; those start 500 ms
// after the window closed and grow by half each time up to 120 s, so after
// a reader paused for a minute the lost update costs another ten seconds
// or more. So while the peer's last advertised window is 0 and the lane
// has data waiting, the lane sends its own WASK segment (KCP's window
// probe; the peer's KCP answers with WINS) one PTO after the window closed,
// then at doubling intervals up to wndProbeMax, until the window opens.

/* Implementation constants */
const (
	// wndProbeMax caps the interval between zero-window probes: one
	// 24-byte segment a second while a reader is paused.
	wndProbeMax = time.Second
	// wndProbeInitial is the first interval when no RTT is known.
	wndProbeInitial = 100 * time.Millisecond
)

// wndProbe is a lane's zero-window probe state.
type wndProbe struct {
	peerWnd  uint16    // the window in the peer's latest segment not recovered by FEC (KCP's rmt_wnd)
	at       time.Time // next probe; zero when not armed
	interval time.Duration
}

// CheckWindows arms the zero-window probe of every lane whose peer's
// window is closed and that has data waiting (after new data).
func (ls *Lanes) CheckWindows(now time.Time) {
	for _, l := range ls.lanes {
		if l.wnd.peerWnd == 0 {
			ls.checkWndProbe(l, now)
		}
	}
}

// checkWndProbe arms or disarms the lane's zero-window probe after input
// or new data: armed while the peer's window is 0 and data waits.
func (ls *Lanes) checkWndProbe(l *lane, now time.Time) {
	w := &l.wnd
	if w.peerWnd != 0 || l.waitSnd() == 0 {
		w.at, w.interval = time.Time{}, 0
		return
	}
	if !w.at.IsZero() {
		return
	}
	t := ls.out.Timing()
	w.interval = t.PTO
	if w.interval != 0 {
		w.interval += t.AckDelay
	} else {
		w.interval = wndProbeInitial
	}
	w.at = now.Add(w.interval)
}

// wndProbeTimer sends the lane's zero-window probe when it is due.
func (ls *Lanes) wndProbeTimer(l *lane, now time.Time) {
	w := &l.wnd
	if w.at.IsZero() || now.Before(w.at) {
		return
	}
	w.at = time.Time{}
	if w.peerWnd != 0 || l.waitSnd() == 0 {
		return
	}
	var h [wire.SegmentHeaderSize]byte
	seg := wire.Segment(h[:])
	seg.SetConv(ls.cfg.Conv)
	seg.SetCmd(wire.CmdWask)
	seg.SetWnd(l.outWnd)
	seg.SetTs(ls.kcpMs())
	seg.SetUna(l.outUna)
	ls.emit(l, seg, Sent{Bytes: len(seg), WndProbe: true})
	w.interval = min(2*w.interval, wndProbeMax)
	w.at = now.Add(w.interval)
}
