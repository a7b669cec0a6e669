//go:build unix

package peering

import (
	"net"
	"syscall"
)

// rawConn is a connection's descriptor.
type rawConn = syscall.RawConn

// rawConnOf returns the descriptor of a plain TCP connection, nil for any
// other: bytes written to a TLS connection's socket would bypass TLS.
func rawConnOf(conn net.Conn) rawConn {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeNonBlocking writes as much of b as the socket takes at once and
// returns how much that was. Go keeps its sockets non-blocking, so a full
// socket ends the write (EAGAIN) instead of waiting.
func writeNonBlocking(raw rawConn, b []byte) (n int, err error) {
	rerr := raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			switch {
			case e == syscall.EINTR:
			case e == syscall.EAGAIN:
				return true
			case e != nil:
				err = e
				return true
			case m <= 0:
				return true
			}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
}
