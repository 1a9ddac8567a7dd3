package uxp_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"slices"
	"time"

	"github.com/uxp-go/uxp"
)

// A fixed-tick game loop on a poll group: the server's events are queued
// for the loop instead of calling back on the SDK's workers, so the game
// state (here, the players and their chat) needs no lock. Each player's
// state is its session's user data, and each tick broadcasts the chat
// lines to everyone.
func ExamplePollGroup() {
	kp, err := uxp.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	group, err := uxp.NewPollGroup(nil)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := uxp.NewServer(pc, group.ServerHandler(), &uxp.Config{PrivateKey: kp.Private})
	if err != nil {
		pc.Close()
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// A player that says hello and waits for its echo.
	got := make(chan string, 1)
	cl, err := uxp.Dial(context.Background(), srv.Addr().String(), printLine(got), &uxp.Config{ServerPublicKey: kp.Public})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Conn().Write([]byte("hello")); err != nil {
		log.Fatal(err)
	}

	type player struct{ said int }
	var players []*uxp.Conn
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case line := <-got:
			fmt.Println(line)
			return
		case <-tick.C:
		}
		var chat [][]byte
		for _, ev := range group.Poll(0) {
			switch ev.Kind {
			case uxp.PollConnected:
				ev.Conn.SetUserData(&player{})
				players = append(players, ev.Conn)
			case uxp.PollMessage:
				ev.Conn.UserData().(*player).said++
				chat = append(chat, fmt.Appendf(nil, "player %d: %s", ev.Conn.UserData().(*player).said, ev.Data))
			case uxp.PollClosed:
				players = slices.DeleteFunc(players, func(c *uxp.Conn) bool { return c == ev.Conn })
			}
			ev.Release() // ev.Data is not valid after this
		}
		for _, line := range chat {
			srv.Broadcast(players, line) // failures are per session, in the result
		}
	}
	// Output: player 1: hello
}

type printLine chan string

func (p printLine) OnReady(*uxp.Conn)         {}
func (p printLine) OnClosed(*uxp.Conn, error) {}
func (p printLine) OnNewDataComing(_ *uxp.Conn, data []byte) {
	select {
	case p <- string(data):
	default:
	}
}
