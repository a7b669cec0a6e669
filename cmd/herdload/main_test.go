package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// TestLoadSendsValidIAMATs runs the load against a server that checks every
// line: each must be a valid IAMAT for a client of the run.
func TestLoadSendsValidIAMATs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bad := make(chan string, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				var fields [][]byte
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fields = protocol.Fields(fields, []byte(line))
					if protocol.Classify(fields) != protocol.IAMAT || !strings.HasPrefix(string(fields[1]), "t-") {
						select {
						case bad <- line:
						default:
						}
					}
					conn.Write([]byte("AT S +0.000000000 x +1+1 1\n"))
				}
			}()
		}
	}()
	res, err := iamatLoad(iamatConfig{Addr: ln.Addr().String(), Conns: 4, Pipeline: 8, Duration: 200 * time.Millisecond, Clients: 100, Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-bad:
		t.Fatalf("the load sent %q", line)
	default:
	}
	if res.ops == 0 || len(res.latencies) != int(res.ops) {
		t.Errorf("ops %d, %d latencies", res.ops, len(res.latencies))
	}
}
