// Command echo is the smallest uxp program that uses the net.Conn adapter:
// the server echoes every byte back, the client sends the lines it reads
// from stdin and prints what comes back.
//
//	go run ./sample/echo server -listen 127.0.0.1:4000
//	go run ./sample/echo client -server 127.0.0.1:4000 -server-key BASE64
//
// The server prints its public key at start (it generates a key for the
// run unless -key-file names one made by `uxp keygen -private-out`). The
// client also reads the key from $UXP_SERVER_KEY. SIGINT or SIGTERM stops
// either side cleanly.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/uxp-go/uxp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, nil)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// run is main without the process. ready, if not nil, is called with the
// server's address and public key once it listens (tests use it).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, ready func(net.Addr, uxp.PublicKey)) error {
	if len(args) == 0 || (args[0] != "server" && args[0] != "client") {
		fmt.Fprintln(stderr, "usage: echo server [-listen ADDR] [-key-file FILE] | echo client -server ADDR [-server-key BASE64]")
		return errors.New("missing mode: server or client")
	}
	fs := flag.NewFlagSet("echo "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4000", "server: UDP `address` to listen on")
	keyFile := fs.String("key-file", "", "server: `file` with the base64 private key; empty generates one for this run")
	server := fs.String("server", "127.0.0.1:4000", "client: server `address`")
	serverKey := fs.String("server-key", os.Getenv("UXP_SERVER_KEY"), "client: the server's base64 public key (default $UXP_SERVER_KEY)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "server" {
		return serve(ctx, *listen, *keyFile, stdout, ready)
	}
	return client(ctx, *server, *serverKey, stdin, stdout)
}

func serve(ctx context.Context, listen, keyFile string, stdout io.Writer, ready func(net.Addr, uxp.PublicKey)) error {
	kp, err := serverKeys(keyFile)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	ln, err := uxp.Listen(pc, &uxp.Config{PrivateKey: kp.Private})
	if err != nil {
		pc.Close()
		return err
	}
	fmt.Fprintf(stdout, "listening on %s, public key %s\n", ln.Addr(), kp.Public)
	if ready != nil {
		ready(ln.Addr(), kp.Public)
	}
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close() // ends every session, which ends every echo goroutine
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil // SIGINT/SIGTERM
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			n, err := io.Copy(c, c)
			fmt.Fprintf(stdout, "%s: echoed %d bytes (%v)\n", c.RemoteAddr(), n, endReason(err))
		}()
	}
}

func endReason(err error) string {
	if err == nil {
		return "closed by peer"
	}
	return err.Error()
}

func serverKeys(keyFile string) (uxp.KeyPair, error) {
	if keyFile == "" {
		return uxp.GenerateKey()
	}
	priv, err := uxp.ReadPrivateKeyFile(keyFile)
	if err != nil {
		return uxp.KeyPair{}, err
	}
	pub, err := priv.PublicKey()
	return uxp.KeyPair{Private: priv, Public: pub}, err
}

func client(ctx context.Context, server, serverKey string, stdin io.Reader, stdout io.Writer) error {
	if serverKey == "" {
		return errors.New("client: -server-key (or $UXP_SERVER_KEY) is required")
	}
	pub, err := uxp.ParsePublicKey(serverKey)
	if err != nil {
		return fmt.Errorf("-server-key: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := uxp.DialConn(dctx, server, &uxp.Config{ServerPublicKey: pub})
	if err != nil {
		return err // errors.Is(err, uxp.ErrHandshakeFailed) for a wrong key
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // SIGINT unblocks Read
	defer stop()

	in := bufio.NewScanner(stdin)
	echoed := bufio.NewReader(c)
	for in.Scan() {
		if _, err := fmt.Fprintf(c, "%s\n", in.Text()); err != nil {
			return err
		}
		line, err := echoed.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fmt.Fprint(stdout, line)
	}
	return in.Err()
}
