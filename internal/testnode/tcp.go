package testnode

import (
	"net"
	"testing"
)

// ServeTCP listens on a free loopback port until the test ends, answering every
// connection with reply (which may be empty) and closing it: a peer for the
// connections a sensor test makes. It returns the listener's address.
func ServeTCP(tb testing.TB, reply []byte) *net.TCPAddr {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if len(reply) > 0 {
				c.Write(reply)
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}
