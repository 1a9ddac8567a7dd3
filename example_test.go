package uxp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/uxp-go/uxp"
)

// Generate the server's static key pair once and keep the private key
// secret; clients pin the public key (its base64 form travels well).
func ExampleGenerateKey() {
	kp, err := uxp.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	text := kp.Public.String() // give this to clients
	pub, err := uxp.ParsePublicKey(text)
	if err != nil {
		log.Fatal(err)
	}
	derived, _ := kp.Private.PublicKey()
	fmt.Println(len(text), "base64 characters")
	fmt.Println("round trip:", pub == kp.Public, derived == kp.Public)
	// Output:
	// 44 base64 characters
	// round trip: true true
}

// echoServer answers every session with an echo handler.
type echoServer struct{ uxp.NopServerHandler }

func (echoServer) OnNewConnComing(c *uxp.Conn) { c.SetHandler(echoHandler{}) }

type echoHandler struct{ uxp.NopHandler }

// OnNewDataComing runs on the session's worker; Write is safe here and
// copies data, which is only valid during the call.
func (echoHandler) OnNewDataComing(c *uxp.Conn, data []byte) { c.Write(data) }

// replies hands the client's messages to the example.
type replies struct {
	uxp.NopHandler
	got chan string
}

func (r replies) OnNewDataComing(_ *uxp.Conn, data []byte) { r.got <- string(data) }

// The callback API: a Server whose sessions echo every message, and a
// Client that sends two messages and receives them back whole and in
// order.
func Example_callbacks() {
	kp, _ := uxp.GenerateKey()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := uxp.NewServer(pc, echoServer{}, &uxp.Config{PrivateKey: kp.Private})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := replies{got: make(chan string, 2)}
	cl, err := uxp.Dial(ctx, srv.Addr().String(), h, &uxp.Config{ServerPublicKey: kp.Public})
	if err != nil {
		log.Fatal(err) // errors.Is(err, uxp.ErrHandshakeFailed) for a wrong key
	}
	defer cl.Close()
	cl.Conn().Write([]byte("hello"))
	cl.Conn().Write([]byte("world"))
	fmt.Println(<-h.got)
	fmt.Println(<-h.got)
	// Output:
	// hello
	// world
}

// The stream adapter: Listen gives a net.Listener of net.Conns and
// DialConn a net.Conn, so any code written for TCP runs over uxp. Here the
// server upper-cases each line.
func Example_stream() {
	kp, _ := uxp.GenerateKey()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := uxp.Listen(pc, &uxp.Config{PrivateKey: kp.Private})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener was closed
			}
			go func() {
				defer c.Close()
				lines := bufio.NewScanner(c)
				for lines.Scan() {
					io.WriteString(c, strings.ToUpper(lines.Text())+"\n")
				}
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := uxp.DialConn(ctx, ln.Addr().String(), &uxp.Config{ServerPublicKey: kp.Public})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) // a timeout is a net.Error with Timeout() true
	fmt.Fprintln(c, "hello over uxp")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(reply)
	// Output:
	// HELLO OVER UXP
}
