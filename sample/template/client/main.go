// Command client is a template uxp client: it sends numbered messages to a
// server (such as sample/template/server), logs each echo with its round
// trip time, and logs every callback. Copy it as the starting point of a
// real client.
//
//	go run ./sample/template/client -server 127.0.0.1:4000 -server-key BASE64
//
// The server's public key comes from -server-key, -server-key-file or the
// UXP_SERVER_KEY environment variable, in that order.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/uxp-go/uxp"
)

func main() {
	// SIGINT and SIGTERM cancel ctx, and run closes the client.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, log)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("client failed", "err", err)
		os.Exit(1)
	}
}

// keyEnv names the environment variable that can hold the server's key.
const keyEnv = "UXP_SERVER_KEY"

// A message is a header and some text:
//
//	|--seq u64--|--sent i64--|--text--|
//
// seq numbers the messages from 0 and sent is when the message was written,
// in nanoseconds since the client started (a monotonic reading, so the
// echo's round trip is a subtraction). Both are little-endian.
const headerSize = 16

// run parses args, connects, sends -count messages one -interval apart and
// returns once all of them were echoed, or nil early when ctx is cancelled
// (a signal). getenv looks up UXP_SERVER_KEY; flag errors go to flagOutput.
func run(ctx context.Context, args []string, getenv func(string) string, flagOutput io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(flagOutput)
	server := fs.String("server", "127.0.0.1:4000", "server UDP `address`")
	keyFlag := fs.String("server-key", "", "the server's base64 public `key`")
	keyFile := fs.String("server-key-file", "", "`file` holding the server's base64 public key (used if -server-key is empty)")
	count := fs.Int("count", 10, "messages to send")
	interval := fs.Duration("interval", time.Second, "time between messages")
	name := fs.String("name", "player", "player `name`, sent in the handshake as connect data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *count < 1 || *interval <= 0 {
		return errors.New("-count and -interval must be positive")
	}
	pub, err := serverKey(*keyFlag, *keyFile, getenv)
	if err != nil {
		return err
	}

	start := time.Now()
	h := &clientHandler{
		log:    log,
		start:  start,
		echoes: make(chan echo, *count),
		closed: make(chan struct{}),
	}
	// Dial returns once the handshake is done and OnReady has run, or with
	// an error matching uxp.ErrHandshakeFailed (wrong key, no server).
	// The server may reject us with a reason (*uxp.RejectError).
	cl, err := uxp.Dial(ctx, *server, h, &uxp.Config{ServerPublicKey: pub, Logger: log, ConnectData: []byte(*name)})
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			log.Info("interrupted while connecting")
			return nil
		}
		var rej *uxp.RejectError
		if errors.As(err, &rej) {
			return fmt.Errorf("the server rejected us (code %d): %s", rej.Code, rej.Reason)
		}
		return err
	}
	// Close flushes what is still queued (while the server keeps
	// acknowledging: Config.CloseLinger), sends the server a close packet
	// and waits for the client's goroutines.
	defer cl.Close()
	conn := cl.Conn()
	log.Info("joined", "server_says", string(conn.AcceptData()))

	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var msg []byte
	sent, received := 0, 0
	send := func() error {
		msg = binary.LittleEndian.AppendUint64(msg[:0], uint64(sent))
		msg = binary.LittleEndian.AppendUint64(msg, uint64(time.Since(start)))
		msg = fmt.Appendf(msg, "hello #%d from a uxp client", sent)
		switch _, err := conn.Write(msg); {
		case err == nil:
			sent++
			return nil
		case errors.Is(err, uxp.ErrWouldBlock):
			// Write never blocks. The queue is full; try this message again
			// on the next tick.
			log.Warn("send queue full, retrying", "seq", sent)
			return nil
		default:
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := send(); err != nil {
		return err
	}
	for received < *count {
		select {
		case <-ctx.Done():
			log.Info("interrupted", "sent", sent, "echoed", received)
			return nil
		case <-h.closed:
			return fmt.Errorf("session ended after %d of %d echoes: %w", received, *count, conn.Err())
		case e := <-h.echoes:
			received++
			log.Info("echo", "seq", e.seq, "rtt", e.rtt, "text", e.text)
		case <-tick.C:
			if sent < *count {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	st := conn.Stats()
	log.Info("done", "echoes", received, "rtt_smoothed", st.RTT, "retransmissions", st.Retransmissions,
		"bytes_out", st.BytesSent, "bytes_in", st.BytesReceived, "drops", st.Drops.Total())
	return nil
}

// serverKey picks the server's public key from the flag, the key file or
// the environment, in that order.
func serverKey(flagValue, file string, getenv func(string) string) (uxp.PublicKey, error) {
	s, from := flagValue, "-server-key"
	if s == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return uxp.PublicKey{}, err
		}
		s, from = string(b), file
	}
	if s == "" {
		s, from = getenv(keyEnv), keyEnv
	}
	if strings.TrimSpace(s) == "" {
		return uxp.PublicKey{}, fmt.Errorf("no server key: use -server-key, -server-key-file or %s", keyEnv)
	}
	k, err := uxp.ParsePublicKey(strings.TrimSpace(s))
	if err != nil {
		return uxp.PublicKey{}, fmt.Errorf("%s: %w", from, err)
	}
	return k, nil
}
