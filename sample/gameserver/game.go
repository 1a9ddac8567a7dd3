package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/uxp-go/uxp"
)

// game is the world. Every field is owned by the loop goroutine: the SDK's
// workers only copy events into the poll group, so the simulation needs
// no lock.
type game struct {
	srv   *uxp.Server
	opt   Options
	log   *slog.Logger
	rooms []*room
	tick  uint32
	snap  []byte // snapshot scratch, reused every tick
}

// room is up to Options.RoomSize players; conns is what Broadcast takes.
type room struct {
	id    int
	conns []*uxp.Conn
}

// player is a session's game state, stored as the session's user data
// (Conn.SetUserData) so that any event for the session leads straight to
// it. Owned by the loop goroutine.
type player struct {
	name   string
	room   *room
	x, y   int16
	kicked bool
}

func playerOf(c *uxp.Conn) *player {
	p, _ := c.UserData().(*player)
	return p
}

// loop is the fixed-tick simulation: drain events, step the world, send
// snapshots. It returns after a graceful shutdown once ctx ends.
func (g *game) loop(ctx context.Context, group *uxp.PollGroup) error {
	t := time.NewTicker(g.opt.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return g.shutdown(group)
		case <-t.C:
		}
		// One drain per tick, however many events arrived: the tick rate,
		// not the network, paces the simulation.
		for _, ev := range group.Poll(0) {
			g.handle(ev)
			ev.Release()
		}
		g.tick++
		for _, r := range g.rooms {
			g.sendSnapshot(r)
		}
	}
}

func (g *game) handle(ev uxp.PollEvent) {
	c := ev.Conn
	switch ev.Kind {
	case uxp.PollConnected:
		g.join(c)
	case uxp.PollMessage:
		p := playerOf(c)
		if p == nil || p.kicked {
			return
		}
		switch {
		case ev.Lane == laneControl:
			if name, ok := strings.CutPrefix(string(ev.Data), "name "); ok && name != "" && len(name) <= 32 && p.room == nil {
				p.name = name
				g.seat(c, p)
			}
		case p.room == nil:
			// Not seated yet: lanes are independent, so chat may overtake
			// the name; the client waits for its welcome before chatting.
		case ev.Lane == laneChat:
			line := fmt.Sprintf("%s: %s", p.name, ev.Data)
			g.broadcastReliable(p.room, laneChat, line)
		}
	case uxp.PollDatagram:
		p := playerOf(c)
		if p == nil || p.kicked || p.room == nil || len(ev.Data) != 4 {
			return // a malformed input is ignored, as any peer input must be
		}
		x := int16(binary.LittleEndian.Uint16(ev.Data[0:]))
		y := int16(binary.LittleEndian.Uint16(ev.Data[2:]))
		if abs(int(x)-int(p.x)) > g.opt.MaxStep || abs(int(y)-int(p.y)) > g.opt.MaxStep {
			g.kick(c, p, "moving too fast")
			return
		}
		p.x, p.y = x, y
	case uxp.PollClosed:
		g.leave(c, ev.Err)
	}
}

// join registers a new session as a player, not yet in a room: it joins
// one once it has named itself (its "name" message).
func (g *game) join(c *uxp.Conn) {
	c.SetUserData(&player{name: fmt.Sprintf("player-%d", c.ID()%10000)})
	g.log.Info("player connected", "session", c.ID(), "remote", c.RemoteAddr())
}

// seat puts a named player in the first room with space and welcomes it.
func (g *game) seat(c *uxp.Conn, p *player) {
	var r *room
	for _, cand := range g.rooms {
		if len(cand.conns) < g.opt.RoomSize {
			r = cand
			break
		}
	}
	if r == nil {
		r = &room{id: len(g.rooms)}
		g.rooms = append(g.rooms, r)
	}
	p.room = r
	r.conns = append(r.conns, c)
	if _, err := c.WriteLane(laneControl, fmt.Appendf(nil, "welcome %d %d", c.ID(), r.id)); err != nil {
		g.log.Warn("welcome not sent", "session", c.ID(), "err", err)
	}
	g.log.Info("player seated", "session", c.ID(), "name", p.name, "room", r.id)
}

// leave takes a player out of its room when its session has ended.
func (g *game) leave(c *uxp.Conn, err error) {
	p := playerOf(c)
	if p == nil || p.room == nil {
		return
	}
	r := p.room
	r.conns = slices.DeleteFunc(r.conns, func(o *uxp.Conn) bool { return o == c })
	g.log.Info("player left", "session", c.ID(), "room", r.id, "err", err)
	if !p.kicked {
		g.broadcastReliable(r, laneChat, "* "+p.name+" left")
	}
}

// kick removes a player with a reason the client receives: the reason goes
// on the control lane, then Close, which still delivers what was written
// before it. (With a close reason in the close packet itself, when the SDK
// has one, the reason would need no lane message.)
func (g *game) kick(c *uxp.Conn, p *player, reason string) {
	p.kicked = true
	p.room.conns = slices.DeleteFunc(p.room.conns, func(o *uxp.Conn) bool { return o == c })
	g.log.Info("kicking player", "session", c.ID(), "reason", reason)
	_, _ = c.WriteLane(laneControl, []byte("kick "+reason))
	c.Close()
	g.broadcastReliable(p.room, laneChat, "* "+p.name+" was kicked: "+reason)
}

func (g *game) broadcastReliable(r *room, lane int, msg string) {
	res := g.srv.BroadcastLane(r.conns, lane, []byte(msg))
	for _, f := range res.Failed {
		// A player whose queue is full misses the line; one that just
		// ended leaves at its PollClosed.
		g.log.Debug("chat line not queued", "session", f.Conn.ID(), "err", f.Err)
	}
}

// sendSnapshot sends the room's state to its players as a latest-only
// datagram: a lost one is never retransmitted, and an old one that
// arrives after a newer is dropped by the client's SDK.
func (g *game) sendSnapshot(r *room) {
	if len(r.conns) == 0 {
		return
	}
	b := binary.LittleEndian.AppendUint32(g.snap[:0], g.tick)
	b = append(b, byte(len(r.conns)))
	for _, c := range r.conns {
		p := playerOf(c)
		b = binary.LittleEndian.AppendUint32(b, c.ID())
		b = binary.LittleEndian.AppendUint16(b, uint16(p.x))
		b = binary.LittleEndian.AppendUint16(b, uint16(p.y))
	}
	g.snap = b
	g.srv.BroadcastDatagramLatest(r.conns, snapshotChannel, b) // failures: the next tick sends a newer one
}

// shutdown tells every player, gives the messages a moment, and closes the
// server (which closes every session and waits for the workers).
func (g *game) shutdown(group *uxp.PollGroup) error {
	g.log.Info("shutting down")
	for _, r := range g.rooms {
		g.broadcastReliable(r, laneControl, "shutdown")
		for _, c := range r.conns {
			c.Close() // delivers "shutdown" first
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for g.srv.Stats().Sessions > 0 && time.Now().Before(deadline) {
		time.Sleep(g.opt.Tick)
		for _, ev := range group.Poll(0) {
			ev.Release()
		}
	}
	err := g.srv.Close()
	if errors.Is(err, uxp.ErrServerClosed) {
		err = nil
	}
	return err
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
