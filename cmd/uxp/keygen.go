package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/uxp-go/uxp"
)

// keygenCommand implements `uxp keygen`: it prints a new key pair as
// "private: <base64>" and "public: <base64>" lines, or writes either key to
// a file instead.
func keygenCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("uxp keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	privOut := fs.String("private-out", "", "write the private key to `FILE` (mode 0600) instead of stdout")
	pubOut := fs.String("public-out", "", "write the public key to `FILE` instead of stdout")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: uxp keygen [flags]\n\nGenerate a static X25519 key pair for a uxp server.\nThe server keeps the private key; clients pin the public key.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	kp, err := uxp.GenerateKey()
	if err != nil {
		return err
	}
	// Write the private key first: if that fails, no public key is left
	// behind without its private half.
	if *privOut != "" {
		if err := writeKeyFile(*privOut, kp.Private.String(), 0o600); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "private: %s\n", kp.Private)
	}
	if *pubOut != "" {
		if err := writeKeyFile(*pubOut, kp.Public.String(), 0o644); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "public: %s\n", kp.Public)
	}
	return nil
}

// writeKeyFile writes key and a newline to a new file. It refuses to
// overwrite an existing file: replacing a server's key silently would lock
// out every client that pinned the old one.
func writeKeyFile(path, key string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, key); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
