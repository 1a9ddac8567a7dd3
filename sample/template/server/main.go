// Command server is a template uxp server: it echoes every message back to
// its sender and logs every callback. Copy it as the starting point of a
// real server.
//
//	go run ./sample/template/server -listen 127.0.0.1:4000 -key-file server.key
//
// Create the key file with `uxp keygen -private-out server.key`. Without
// -key-file the server makes up a key for this run only and logs its public
// key, which the client needs.
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
	// SIGINT and SIGTERM cancel ctx, and run closes the server.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Args[1:], os.Stderr, log, nil)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("server failed", "err", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx ends or the socket fails, and closes
// the server. Flag errors go to flagOutput. listening, if not nil, is called
// once the server is up, with its address and public key (tests use it to
// learn which port "127.0.0.1:0" picked).
func run(ctx context.Context, args []string, flagOutput io.Writer, log *slog.Logger, listening func(net.Addr, uxp.PublicKey)) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(flagOutput)
	listen := fs.String("listen", "127.0.0.1:4000", "UDP `address` to listen on")
	keyFile := fs.String("key-file", "", "`file` holding the base64 private key (made by uxp keygen -private-out); empty generates a key for this run")
	statsEvery := fs.Duration("stats-interval", 10*time.Second, "how often to log the server's stats; 0 disables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	priv, err := loadOrGenerateKey(*keyFile, log)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	h := &serverHandler{log: log, closed: make(chan error, 1)}
	srv, err := uxp.NewServer(pc, h, &uxp.Config{PrivateKey: priv, Logger: log})
	if err != nil {
		pc.Close() // the Server owns pc only once NewServer succeeded
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	log.Info("listening", "addr", srv.Addr(), "public_key", srv.PublicKey())
	if listening != nil {
		listening(srv.Addr(), srv.PublicKey())
	}

	var tick <-chan time.Time
	if *statsEvery > 0 {
		t := time.NewTicker(*statsEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "cause", context.Cause(ctx))
			// Close ends every session (each gets OnClosed and
			// OnConnClosed), waits for the workers, then calls OnClosed.
			if err := srv.Close(); err != nil {
				return err
			}
			logStats(log, srv.Stats())
			return nil
		case err := <-h.closed:
			// The server stopped by itself: its socket failed.
			srv.Close()
			return fmt.Errorf("server stopped: %w", err)
		case <-tick:
			logStats(log, srv.Stats())
		}
	}
}

// loadOrGenerateKey reads the private key from path, or makes a new one if
// path is empty. A generated key lasts for this run only, so clients must
// be given its public key again after every restart.
func loadOrGenerateKey(path string, log *slog.Logger) (uxp.PrivateKey, error) {
	if path == "" {
		kp, err := uxp.GenerateKey()
		if err != nil {
			return uxp.PrivateKey{}, err
		}
		log.Warn("no -key-file: generated a key for this run only", "public_key", kp.Public)
		return kp.Private, nil
	}
	return uxp.ReadPrivateKeyFile(path)
}

func logStats(log *slog.Logger, st uxp.ServerStats) {
	log.Info("stats",
		"sessions", st.Sessions, "half_open", st.HalfOpen, "accepted", st.SessionsAccepted,
		"msgs_in", st.MessagesReceived, "msgs_out", st.MessagesSent,
		"bytes_in", st.BytesReceived, "bytes_out", st.BytesSent,
		"retransmissions", st.Retransmissions, "drops", st.Drops.Total())
}
