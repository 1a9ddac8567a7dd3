// Command gameserver is a small authoritative game server on uxp, in the
// shape real ones take: players are put in rooms of up to eight, a
// fixed-tick loop (20 Hz) drains every session's events from a poll group
// on its own goroutine, moves the world, and sends each room a snapshot as
// a latest-only datagram; chat travels on a reliable lane of its own;
// a player who cheats is kicked with a reason; SIGINT or SIGTERM tells
// every player why and shuts down gracefully. A bot mode plays it.
//
//	go run ./sample/gameserver server -listen 127.0.0.1:4000
//	go run ./sample/gameserver bots -server 127.0.0.1:4000 -server-key BASE64 -n 24
//
// The application protocol:
//
//	lane 0 (control, reliable):  player → server  "name NAME" (first: it seats the player)
//	                             server → player  "welcome ID ROOM", "kick REASON", "shutdown"
//	lane 1 (chat, reliable):     player → server  a line; server → room  "NAME: line"
//	latest datagram, channel 0:  player → server  input: x (i16) | y (i16)
//	                             server → room    snapshot: tick (u32) | count (u8) |
//	                                              count × (id u32 | x i16 | y i16)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/uxp-go/uxp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Args[1:], os.Stderr, log)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("gameserver failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, flagOut io.Writer, log *slog.Logger) error {
	if len(args) == 0 || (args[0] != "server" && args[0] != "bots") {
		fmt.Fprintln(flagOut, "usage: gameserver server [-listen ADDR] | gameserver bots -server ADDR -server-key BASE64 [-n N]")
		return errors.New("missing mode: server or bots")
	}
	fs := flag.NewFlagSet("gameserver "+args[0], flag.ContinueOnError)
	fs.SetOutput(flagOut)
	listen := fs.String("listen", "127.0.0.1:4000", "server: UDP `address` to listen on (\"[::]:4000\" serves IPv4 and IPv6)")
	server := fs.String("server", "127.0.0.1:4000", "bots: server `address`")
	serverKey := fs.String("server-key", os.Getenv("UXP_SERVER_KEY"), "bots: the server's base64 public key (default $UXP_SERVER_KEY)")
	n := fs.Int("n", 24, "bots: how many bots")
	duration := fs.Duration("duration", 0, "bots: how long to play; 0 plays until SIGINT or SIGTERM")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "server" {
		kp, err := uxp.GenerateKey()
		if err != nil {
			return err
		}
		pc, err := net.ListenPacket("udp", *listen)
		if err != nil {
			return err
		}
		return Serve(ctx, pc, kp.Private, Options{Log: log})
	}
	pub, err := uxp.ParsePublicKey(*serverKey)
	if err != nil {
		return fmt.Errorf("-server-key: %w", err)
	}
	raddr, err := net.ResolveUDPAddr("udp", *server)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	return runBots(ctx, *n, raddr, pub, log)
}

// Config shared by both sides: the lanes must match.
const (
	laneControl = 0
	laneChat    = 1

	snapshotChannel = 0
	inputChannel    = 0
)

func gameConfig() *uxp.Config {
	return &uxp.Config{
		Lanes: []uxp.LaneConfig{
			{Priority: 1}, // control: kicks and welcomes go before chat
			{Priority: 0}, // chat
		},
		HeartbeatInterval: time.Second,
		IdleTimeout:       10 * time.Second,
	}
}

// Options tunes Serve. Zero fields mean the defaults.
type Options struct {
	// Tick is the simulation period; zero means 50 ms (20 Hz).
	Tick time.Duration
	// RoomSize is the most players a room holds; zero means 8.
	RoomSize int
	// MaxStep is the farthest a player may move in one input; a bigger
	// jump gets the player kicked. Zero means 10.
	MaxStep int
	// Log receives the server's log; nil discards it.
	Log *slog.Logger
	// Ready, if not nil, is called with the server once it serves.
	Ready func(*uxp.Server)
}

// Serve runs the game server on pc until ctx ends, then tells every
// player it is shutting down and closes. It owns pc.
func Serve(ctx context.Context, pc net.PacketConn, priv uxp.PrivateKey, opt Options) error {
	if opt.Tick == 0 {
		opt.Tick = 50 * time.Millisecond
	}
	if opt.RoomSize == 0 {
		opt.RoomSize = 8
	}
	if opt.MaxStep == 0 {
		opt.MaxStep = 10
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	// The poll group bounds what waits for the loop: reliable messages
	// beyond it wait in the players' lanes (backpressure), datagrams
	// beyond it are dropped (the next input supersedes them anyway).
	group, err := uxp.NewPollGroup(nil)
	if err != nil {
		pc.Close()
		return err
	}
	cfg := gameConfig()
	cfg.PrivateKey = priv
	cfg.Logger = opt.Log
	srv, err := uxp.NewServer(pc, group.ServerHandler(), cfg)
	if err != nil {
		pc.Close()
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	opt.Log.Info("game server listening", "addr", srv.Addr(), "public_key", srv.PublicKey())
	if opt.Ready != nil {
		opt.Ready(srv)
	}
	g := &game{srv: srv, opt: opt, log: opt.Log}
	return g.loop(ctx, group)
}
