package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/uxp-go/uxp"
)

// bot is a scripted player: it names itself, says hello in chat once it
// is seated, walks in
// small steps (or, if it cheats, teleports) and counts what it receives.
// Its callbacks run on its session's worker; the report is guarded by mu.
type bot struct {
	uxp.NopHandler
	name  string
	cheat bool

	mu        sync.Mutex
	welcomed  bool
	room      int
	snapshots int
	lastTick  uint32
	maxSeen   int // most players seen in one snapshot
	chat      []string
	kick      string
	shutdown  bool
	err       error
	done      chan struct{}
	regressed bool // a snapshot older than one already seen was delivered
}

var (
	_ uxp.LaneHandler     = (*bot)(nil)
	_ uxp.DatagramHandler = (*bot)(nil)
)

func newBot(name string, cheat bool) *bot {
	return &bot{name: name, cheat: cheat, room: -1, done: make(chan struct{})}
}

func (b *bot) OnNewLaneDataComing(c *uxp.Conn, lane int, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(data)
	switch {
	case lane == laneChat:
		b.chat = append(b.chat, s)
	case strings.HasPrefix(s, "welcome "):
		var id uint32
		if _, err := fmt.Sscanf(s, "welcome %d %d", &id, &b.room); err == nil && !b.welcomed {
			b.welcomed = true
			// Seated: now chat reaches the room. (Write is safe in a
			// callback: it only queues.)
			_, _ = c.WriteLane(laneChat, []byte("hello from "+b.name))
		}
	case strings.HasPrefix(s, "kick "):
		b.kick = strings.TrimPrefix(s, "kick ")
		c.Close() // the server closes too; whichever close arrives first ends it
	case s == "shutdown":
		b.shutdown = true
		c.Close()
	}
}

func (b *bot) OnNewDatagramComing(_ *uxp.Conn, msg []byte) {
	if len(msg) < 5 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	tick := binary.LittleEndian.Uint32(msg)
	if b.snapshots > 0 && int32(tick-b.lastTick) <= 0 {
		b.regressed = true
	}
	b.snapshots++
	b.lastTick = tick
	b.maxSeen = max(b.maxSeen, int(msg[4]))
}

func (b *bot) OnClosed(_ *uxp.Conn, err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
	close(b.done)
}

// play runs the bot's session on pc until ctx ends or the session does.
func (b *bot) play(ctx context.Context, pc net.PacketConn, server net.Addr, pub uxp.PublicKey) error {
	cfg := gameConfig()
	cfg.ServerPublicKey = pub
	cl, err := uxp.NewClient(pc, server, b, cfg)
	if err != nil {
		pc.Close()
		return err
	}
	defer cl.Close()
	if err := cl.Start(ctx); err != nil {
		return err
	}
	c := cl.Conn()
	if _, err := c.WriteLane(laneControl, []byte("name "+b.name)); err != nil {
		return err
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var x, y int16
	var in [4]byte
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return nil
		case <-b.done:
			return nil
		case <-t.C:
		}
		x++
		if b.cheat && step == 20 {
			x += 1000
		}
		binary.LittleEndian.PutUint16(in[0:], uint16(x))
		binary.LittleEndian.PutUint16(in[2:], uint16(y))
		if err := c.WriteDatagramLatest(inputChannel, in[:]); err != nil && !errors.Is(err, uxp.ErrWouldBlock) {
			return nil // the session ended; OnClosed has the reason
		}
	}
}

// runBots plays n bots against a real server until ctx ends.
func runBots(ctx context.Context, n int, server net.Addr, pub uxp.PublicKey, log *slog.Logger) error {
	var wg sync.WaitGroup
	bots := make([]*bot, n)
	for i := range bots {
		bots[i] = newBot(fmt.Sprintf("bot%02d", i), false)
		pc, err := net.ListenPacket("udp", ":0")
		if err != nil {
			return err
		}
		wg.Go(func() {
			if err := bots[i].play(ctx, pc, server, pub); err != nil {
				log.Error("bot failed", "bot", bots[i].name, "err", err)
			}
		})
	}
	wg.Wait()
	for _, b := range bots {
		b.mu.Lock()
		log.Info("bot", "name", b.name, "room", b.room, "snapshots", b.snapshots, "chat_lines", len(b.chat), "kick", b.kick)
		b.mu.Unlock()
	}
	return nil
}
