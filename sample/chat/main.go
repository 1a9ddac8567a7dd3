// Command chat is a chat room server and client on uxp's callback API:
// clients join rooms, and the server broadcasts each line to everyone in
// the sender's room (Server.Broadcast), keeping each player's nick and room
// on the session (Conn.SetUserData).
//
//	go run ./sample/chat server -listen 127.0.0.1:4000
//	go run ./sample/chat client -server 127.0.0.1:4000 -server-key BASE64 -nick alice
//
// Client input lines: "/join ROOM" changes room (everyone starts in
// "lobby"), "/nick NAME" renames, anything else is said to the room. The
// server prints its public key at start; the client also reads it from
// $UXP_SERVER_KEY. SIGINT or SIGTERM stops either side cleanly.
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
	"strings"
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
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run is main without the process. ready, if not nil, is called with the
// server's address and public key once it listens (tests use it).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, ready func(net.Addr, uxp.PublicKey)) error {
	if len(args) == 0 || (args[0] != "server" && args[0] != "client") {
		fmt.Fprintln(stderr, "usage: chat server [-listen ADDR] | chat client -server ADDR -server-key BASE64 [-nick NAME]")
		return errors.New("missing mode: server or client")
	}
	fs := flag.NewFlagSet("chat "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4000", "server: UDP `address` to listen on")
	server := fs.String("server", "127.0.0.1:4000", "client: server `address`")
	serverKey := fs.String("server-key", os.Getenv("UXP_SERVER_KEY"), "client: the server's base64 public key (default $UXP_SERVER_KEY)")
	nick := fs.String("nick", "", "client: your `name` in the room")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}
	if args[0] == "server" {
		return serve(ctx, *listen, out, ready)
	}
	return client(ctx, *server, *serverKey, *nick, stdin, out)
}

// lockedWriter serialises writes from callbacks on several workers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}

// ---- server ----

// chatServer is the ServerHandler and owns the rooms. Each session's
// member record travels on the session itself (Conn.SetUserData), so no
// map from sessions to members is needed; the rooms are lists of sessions
// for Server.Broadcast. Callbacks of different sessions run on different
// workers, so the rooms and members are guarded by mu; a broadcast
// collects the room's sessions under the lock and sends after releasing
// it (Broadcast never blocks, but no SDK call needs our lock held).
type chatServer struct {
	uxp.NopServerHandler
	out   *lockedWriter
	srv   *uxp.Server // set before Start
	mu    sync.Mutex
	rooms map[string]map[*uxp.Conn]struct{}
}

// member is one session's place in the rooms, stored as its user data.
// Its fields are guarded by chatServer.mu.
type member struct {
	nick string
	room string
}

// rejectNickTaken is this server's reject code for a nick in use.
const rejectNickTaken uint16 = 1

var _ uxp.ConnectHandler = (*chatServer)(nil)

// OnConnectRequest runs on the server's handshake goroutine before any
// session exists: the client's connect data is the nick it wants, and a
// nick already in use is rejected with a reason the client prints.
func (s *chatServer) OnConnectRequest(req *uxp.ConnectRequest) uxp.ConnectDecision {
	nick := string(req.ConnectData())
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		for c := range r {
			if nick != "" && memberOf(c).nick == nick {
				return uxp.RejectConnect(rejectNickTaken, "nick "+nick+" is taken")
			}
		}
	}
	return uxp.AcceptConnect(nil)
}

func memberOf(c *uxp.Conn) *member { return c.UserData().(*member) }

// OnNewConnComing runs on the session's worker. The session gets the one
// shared handler (chatConn); its state is the user data.
func (s *chatServer) OnNewConnComing(c *uxp.Conn) {
	m := &member{nick: fmt.Sprintf("guest-%d", c.ID()%10000)}
	c.SetUserData(m)
	c.SetHandler(chatConn{s: s})
	if nick := c.ConnectData(); len(nick) > 0 {
		m.nick = string(nick) // accepted by OnConnectRequest
	}
	s.mu.Lock()
	s.join(c, m, "lobby")
	s.mu.Unlock()
	s.out.Printf("%s connected from %s\n", m.nick, c.RemoteAddr())
	s.broadcast("lobby", "* "+m.nick+" joined lobby")
}

func (s *chatServer) OnConnClosed(c *uxp.Conn, err error) {
	m := memberOf(c)
	s.mu.Lock()
	room, nick := m.room, m.nick
	s.leave(c, m)
	s.mu.Unlock()
	s.out.Printf("%s left (%v)\n", nick, err)
	s.broadcast(room, "* "+nick+" left")
}

// join and leave need s.mu held.
func (s *chatServer) join(c *uxp.Conn, m *member, room string) {
	if s.rooms[room] == nil {
		s.rooms[room] = make(map[*uxp.Conn]struct{})
	}
	s.rooms[room][c] = struct{}{}
	m.room = room
}

func (s *chatServer) leave(c *uxp.Conn, m *member) {
	r := s.rooms[m.room]
	delete(r, c)
	if len(r) == 0 {
		delete(s.rooms, m.room)
	}
}

// broadcast sends msg to every member of room: one Broadcast, which
// copies msg once and seals it for each session on that session's worker.
func (s *chatServer) broadcast(room, msg string) {
	s.mu.Lock()
	conns := make([]*uxp.Conn, 0, len(s.rooms[room]))
	for c := range s.rooms[room] {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	res := s.srv.Broadcast(conns, []byte(msg))
	for _, f := range res.Failed {
		if errors.Is(f.Err, uxp.ErrWouldBlock) {
			// A client that cannot keep up misses lines rather than
			// making the server buffer without bound.
			s.out.Printf("send queue of session %d full; line dropped\n", f.Conn.ID())
		}
		// Other failures are sessions that just ended: OnConnClosed
		// takes them out of the room.
	}
}

// chatConn is every session's ConnHandler; the session's own state is its
// user data. Its callbacks run on the session's worker.
type chatConn struct {
	uxp.NopHandler
	s *chatServer
}

func (h chatConn) OnNewDataComing(c *uxp.Conn, data []byte) {
	line := strings.TrimSpace(string(data))
	s, m := h.s, memberOf(c)
	switch {
	case strings.HasPrefix(line, "/join "):
		room := strings.TrimSpace(strings.TrimPrefix(line, "/join "))
		if room == "" {
			return
		}
		s.mu.Lock()
		old, nick := m.room, m.nick
		s.leave(c, m)
		s.join(c, m, room)
		s.mu.Unlock()
		s.broadcast(old, "* "+nick+" left for "+room)
		s.broadcast(room, "* "+nick+" joined "+room)
	case strings.HasPrefix(line, "/nick "):
		nick := strings.TrimSpace(strings.TrimPrefix(line, "/nick "))
		if nick == "" {
			return
		}
		s.mu.Lock()
		old, room := m.nick, m.room
		m.nick = nick
		s.mu.Unlock()
		s.broadcast(room, "* "+old+" is now "+nick)
	case line != "":
		s.mu.Lock()
		nick, room := m.nick, m.room
		s.mu.Unlock()
		s.broadcast(room, "["+room+"] "+nick+": "+line)
	}
}

func serve(ctx context.Context, listen string, out *lockedWriter, ready func(net.Addr, uxp.PublicKey)) error {
	kp, err := uxp.GenerateKey()
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	h := &chatServer{out: out, rooms: make(map[string]map[*uxp.Conn]struct{})}
	srv, err := uxp.NewServer(pc, h, &uxp.Config{PrivateKey: kp.Private})
	if err != nil {
		pc.Close()
		return err
	}
	h.srv = srv // before Start: no callback runs earlier
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	out.Printf("chat server on %s, public key %s\n", srv.Addr(), kp.Public)
	if ready != nil {
		ready(srv.Addr(), kp.Public)
	}
	<-ctx.Done()
	out.Printf("shutting down\n")
	return srv.Close() // every client sees its session end
}

// ---- client ----

// printer is the client's ConnHandler: it prints every line from the
// server. It runs on the client's worker goroutine.
type printer struct {
	uxp.NopHandler
	out *lockedWriter
}

func (p printer) OnNewDataComing(_ *uxp.Conn, data []byte) { p.out.Printf("%s\n", data) }

func client(ctx context.Context, server, serverKey, nick string, stdin io.Reader, out *lockedWriter) error {
	if serverKey == "" {
		return errors.New("client: -server-key (or $UXP_SERVER_KEY) is required")
	}
	pub, err := uxp.ParsePublicKey(serverKey)
	if err != nil {
		return fmt.Errorf("-server-key: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The nick travels in the handshake too, so a taken one is refused
	// before the session exists.
	cl, err := uxp.Dial(dctx, server, printer{out: out}, &uxp.Config{ServerPublicKey: pub, ConnectData: []byte(nick)})
	var rej *uxp.RejectError
	if errors.As(err, &rej) {
		return fmt.Errorf("the server refused us: %s", rej.Reason)
	}
	if err != nil {
		return err
	}
	defer cl.Close() // lets lines already written reach the server
	conn := cl.Conn()
	if nick != "" {
		if err := send(ctx, conn, "/nick "+nick); err != nil {
			return err
		}
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewScanner(stdin)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil // SIGINT/SIGTERM
		case <-conn.Done():
			return fmt.Errorf("session ended: %w", conn.Err())
		case line, ok := <-lines:
			if !ok {
				return nil // end of input
			}
			if err := send(ctx, conn, line); err != nil {
				return err
			}
		}
	}
}

// send writes one line, waiting while the send queue is full (Write never
// blocks; it reports ErrWouldBlock instead).
func send(ctx context.Context, c *uxp.Conn, line string) error {
	for {
		_, err := c.Write([]byte(line))
		if !errors.Is(err, uxp.ErrWouldBlock) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
