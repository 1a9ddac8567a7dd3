package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/netsim"
)

// TestGameServer plays 24 bots against the server over a simulated
// network with 5 % loss (and 20 ms delay) each way, in virtual time: they
// fill three rooms of eight, every one receives the snapshots of its room
// (latest-only: never an older after a newer), chat stays within a room,
// the cheater is kicked with its reason, and a shutdown reaches everyone
// else before their sessions end.
func TestGameServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bots, cheater = 24, 5
		nw := netsim.NewNetwork(15)
		defer nw.Close()
		nw.SetDefault(netsim.Impairment{Loss: 0.05, Delay: 20 * time.Millisecond})
		kp, err := uxp.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		spc, err := nw.Listen("10.0.0.1:4000")
		if err != nil {
			t.Fatal(err)
		}
		srvCtx, stopServer := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- Serve(srvCtx, spc, kp.Private, Options{}) }()

		var wg sync.WaitGroup
		players := make([]*bot, bots)
		for i := range players {
			players[i] = newBot(fmt.Sprintf("bot%02d", i), i == cheater)
			pc, err := nw.Listen(fmt.Sprintf("10.0.1.%d:5000", i+1))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				if err := players[i].play(context.Background(), pc, spc.LocalAddr(), kp.Public); err != nil {
					t.Errorf("bot %d: %v", i, err)
				}
			})
			time.Sleep(10 * time.Millisecond) // join in a known order
		}
		time.Sleep(6 * time.Second)
		stopServer()
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		wg.Wait() // every bot's session has ended

		rooms := map[int][]int{}
		for i, b := range players {
			b.mu.Lock()
			if !b.welcomed {
				t.Fatalf("bot %d was never welcomed", i)
			}
			rooms[b.room] = append(rooms[b.room], i)
			b.mu.Unlock()
		}
		if len(rooms) != 3 {
			t.Fatalf("rooms: %v, want 3 of 8", rooms)
		}
		for r, members := range rooms {
			if len(members) != 8 {
				t.Fatalf("room %d has %d players: %v", r, len(members), members)
			}
		}
		for i, b := range players {
			b.mu.Lock()
			if i == cheater {
				if b.kick != "moving too fast" || !closedCleanly(b.err) {
					t.Errorf("cheater: kick %q, err %v", b.kick, b.err)
				}
				b.mu.Unlock()
				continue
			}
			// About 110 ticks after the last bot joined, less 5 % loss.
			if b.snapshots < 80 || b.regressed || b.maxSeen != 8 {
				t.Errorf("bot %d: %d snapshots, regressed %v, at most %d players seen", i, b.snapshots, b.regressed, b.maxSeen)
			}
			if !b.shutdown || !closedCleanly(b.err) {
				t.Errorf("bot %d: shutdown %v, session end %v", i, b.shutdown, b.err)
			}
			own := false
			for _, line := range b.chat {
				var from int
				if _, err := fmt.Sscanf(line, "bot%d:", &from); err == nil {
					if players[from].room != b.room {
						t.Errorf("bot %d (room %d) got %q from room %d", i, b.room, line, players[from].room)
					}
					own = own || from == i
				}
			}
			if !own {
				t.Errorf("bot %d never saw its own hello: %q", i, b.chat)
			}
			if b.room == players[cheater].room && !containsLine(b.chat, "was kicked: moving too fast") {
				t.Errorf("bot %d in the cheater's room was not told of the kick: %q", i, b.chat)
			}
			b.mu.Unlock()
		}
	})
}

// closedCleanly: the session ended by a close, the bot's or the server's
// (not by an idle timeout: a close packet is a single datagram, but both
// sides send one).
func closedCleanly(err error) bool {
	return errors.Is(err, uxp.ErrPeerClosed) || errors.Is(err, uxp.ErrConnClosed)
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
