// Command filetransfer sends a file over a uxp stream (the net.Conn
// adapter). The receiver checks the file's name, size and SHA-256 before
// it keeps it; both sides show progress.
//
//	go run ./sample/filetransfer receive -listen 127.0.0.1:4000 -dir ./inbox
//	go run ./sample/filetransfer send -server 127.0.0.1:4000 -server-key BASE64 photo.jpg
//
// The receiver prints its public key at start (a key for this run, unless
// -key-file names one made by `uxp keygen -private-out`); the sender also
// reads it from $UXP_SERVER_KEY. SIGINT or SIGTERM stops either side; an
// interrupted transfer leaves no file behind.
//
// Wire format, sender to receiver, then one reply line:
//
//	name length (u16 LE) | name | size (u64 LE) | size bytes | SHA-256 (32)
//	"OK <hex sha256>\n" or "ERR <reason>\n"
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uxp-go/uxp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "filetransfer:", err)
		os.Exit(1)
	}
}

// run is main without the process. ready, if not nil, is called with the
// receiver's address and public key once it listens (tests use it).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr, uxp.PublicKey)) error {
	if len(args) == 0 || (args[0] != "send" && args[0] != "receive") {
		fmt.Fprintln(stderr, "usage: filetransfer receive [-listen ADDR] [-dir DIR] | filetransfer send -server ADDR -server-key BASE64 FILE")
		return errors.New("missing mode: send or receive")
	}
	fs := flag.NewFlagSet("filetransfer "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4000", "receive: UDP `address` to listen on")
	dir := fs.String("dir", ".", "receive: `directory` to store files in")
	maxSize := fs.Int64("max-size", 1<<30, "receive: largest file accepted, in `bytes`")
	keyFile := fs.String("key-file", "", "receive: `file` with the base64 private key; empty generates one for this run")
	server := fs.String("server", "127.0.0.1:4000", "send: receiver `address`")
	serverKey := fs.String("server-key", os.Getenv("UXP_SERVER_KEY"), "send: the receiver's base64 public key (default $UXP_SERVER_KEY)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}
	if args[0] == "receive" {
		return receive(ctx, *listen, *keyFile, *dir, *maxSize, out, ready)
	}
	if fs.NArg() != 1 {
		return errors.New("send: name exactly one file to send")
	}
	return send(ctx, *server, *serverKey, fs.Arg(0), out)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}

// progress prints "label: n/total (p%)" each time another tenth is done.
type progress struct {
	out   *lockedWriter
	label string
	total int64
	n     int64
	shown int64 // tenths already shown
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	tenth := int64(10)
	if p.total > 0 {
		tenth = p.n * 10 / p.total
	}
	if tenth > p.shown {
		p.shown = tenth
		p.out.Printf("%s: %d/%d bytes (%d%%)\n", p.label, p.n, p.total, tenth*10)
	}
	return len(b), nil
}

// ---- receive ----

func receive(ctx context.Context, listen, keyFile, dir string, maxSize int64, out *lockedWriter, ready func(net.Addr, uxp.PublicKey)) error {
	kp, err := serverKeys(keyFile)
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("-dir %s: not a directory", dir)
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
	out.Printf("receiving into %s on %s, public key %s\n", dir, ln.Addr(), kp.Public)
	if ready != nil {
		ready(ln.Addr(), kp.Public)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close() // ends the transfers in progress, too
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
			name, err := receiveFile(c, dir, maxSize, out)
			reply := "OK " + name + "\n"
			if err != nil {
				out.Printf("%s: transfer failed: %v\n", c.RemoteAddr(), err)
				reply = "ERR " + err.Error() + "\n"
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, reply)
		}()
	}
}

// receiveFile reads one transfer into dir. The data goes to a temporary
// file that is renamed only after the size and SHA-256 check out.
func receiveFile(c net.Conn, dir string, maxSize int64, out *lockedWriter) (string, error) {
	r := bufio.NewReader(c)
	var n16 [2]byte
	if _, err := io.ReadFull(r, n16[:]); err != nil {
		return "", err
	}
	name := make([]byte, binary.LittleEndian.Uint16(n16[:]))
	if _, err := io.ReadFull(r, name); err != nil {
		return "", err
	}
	if err := checkName(string(name)); err != nil {
		return "", err
	}
	var n64 [8]byte
	if _, err := io.ReadFull(r, n64[:]); err != nil {
		return "", err
	}
	size := int64(binary.LittleEndian.Uint64(n64[:]))
	if size < 0 || size > maxSize {
		return "", fmt.Errorf("size %d exceeds the limit of %d bytes", size, maxSize)
	}
	final := filepath.Join(dir, string(name))
	if _, err := os.Lstat(final); err == nil {
		return "", fmt.Errorf("%s already exists", name)
	}
	tmp, err := os.CreateTemp(dir, ".incoming-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	h := sha256.New()
	p := &progress{out: out, label: "receiving " + string(name), total: size}
	if _, err := io.CopyN(io.MultiWriter(tmp, h, p), r, size); err != nil {
		return "", fmt.Errorf("after %d of %d bytes: %w", p.n, size, err)
	}
	var sum [32]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return "", err
	}
	if got := h.Sum(nil); string(got) != string(sum[:]) {
		return "", fmt.Errorf("SHA-256 mismatch: got %x, sender says %x", got, sum)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	out.Printf("received %s: %d bytes, SHA-256 %x\n", name, size, sum)
	return hex.EncodeToString(sum[:]), nil
}

// checkName accepts a plain file name: no directories, nothing hidden
// behind "..", nothing the receiver's file system would misread.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("invalid file name %q", name)
	case strings.ContainsAny(name, `/\`+"\x00"), filepath.Base(name) != name:
		return fmt.Errorf("file name %q must not contain a path", name)
	}
	return nil
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

// ---- send ----

func send(ctx context.Context, server, serverKey, path string, out *lockedWriter) error {
	if serverKey == "" {
		return errors.New("send: -server-key (or $UXP_SERVER_KEY) is required")
	}
	pub, err := uxp.ParsePublicKey(serverKey)
	if err != nil {
		return fmt.Errorf("-server-key: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	if err := checkName(name); err != nil || len(name) > 0xffff {
		return fmt.Errorf("cannot send %q: %v", name, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := uxp.DialConn(dctx, server, &uxp.Config{ServerPublicKey: pub})
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // SIGINT unblocks Write and Read
	defer stop()

	w := bufio.NewWriterSize(c, 64<<10)
	hdr := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
	hdr = append(hdr, name...)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(st.Size()))
	w.Write(hdr)
	h := sha256.New()
	p := &progress{out: out, label: "sending " + name, total: st.Size()}
	if _, err := io.CopyN(io.MultiWriter(w, h, p), f, st.Size()); err != nil {
		return fmt.Errorf("after %d of %d bytes: %w", p.n, st.Size(), err)
	}
	w.Write(h.Sum(nil))
	if err := w.Flush(); err != nil {
		return err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from the receiver: %w", err)
	}
	reply = strings.TrimSpace(reply)
	if want := "OK " + hex.EncodeToString(h.Sum(nil)); reply != want {
		return fmt.Errorf("receiver refused: %s", strings.TrimPrefix(reply, "ERR "))
	}
	out.Printf("sent %s: %d bytes, receiver verified SHA-256 %x\n", name, st.Size(), h.Sum(nil))
	return nil
}
