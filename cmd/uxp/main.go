// Command uxp is the uxp toolbox: a self-checking demo over an impaired
// loopback network, a key generator, a TCP tunnel and a benchmark.
//
//	uxp demo   [flags]   run a server and many clients in one process
//	uxp keygen [flags]   print or write a new static key pair
//	uxp tunnel server|client [flags]   forward TCP over uxp
//	uxp bench  [flags]   measure goodput and RTT against a bench server
//	uxp version          print the uxp version, wire version and Go version
//	uxp help             print this usage
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed (or the demo was incomplete)
	exitUsage = 2 // bad command line
)

const usageText = `uxp: reliable, encrypted UDP sessions

Usage:

	uxp <command> [flags]

Commands:

	demo     run a server and many clients over impaired loopback UDP and
	         check that every message is echoed intact, once and in order
	keygen   generate a static X25519 key pair for a server
	tunnel   forward TCP connections over uxp (server or client mode)
	bench    measure uxp goodput and round-trip times against a bench
	         server (local, or one started with "uxp bench -serve")
	version  print the uxp version, the wire protocol version and the Go
	         version it was built with
	help     print this help

Run "uxp <command> -h" for the flags of a command.
`

func main() {
	// SIGINT and SIGTERM cancel the context: the demo stops its clients,
	// prints its summary and exits 1 because it is incomplete.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code. It is
// main without the process: tests call it with their own writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "demo":
		var ok bool
		ok, err = demoCommand(ctx, rest, stdout, stderr)
		if err == nil && !ok {
			return exitFail
		}
	case "keygen":
		err = keygenCommand(rest, stdout, stderr)
	case "tunnel":
		err = tunnelCommand(ctx, rest, stdout, stderr)
	case "bench":
		err = benchCommand(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		err = versionCommand(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		// Asked-for help is not an error: print to stdout and succeed, like
		// the flag package does for "-h".
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "uxp: unknown command %q\n\n%s", cmd, usageText)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(*usageError)):
		// The flag package has already printed the problem and the flags.
		return exitUsage
	default:
		fmt.Fprintf(stderr, "uxp %s: %v\n", cmd, err)
		return exitFail
	}
}

// usageError reports a bad command line. Its message has already been
// printed along with the command's flags.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// parseFlags parses args with fs, which must use flag.ContinueOnError, and
// classifies the result: nil, flag.ErrHelp for -h, or a *usageError.
// Positional arguments are rejected because no subcommand takes any.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(fs.Output(), "%v\n", err)
		fs.Usage()
		return &usageError{err}
	}
	return nil
}
