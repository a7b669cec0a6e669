//go:build !unix

package peering

import (
	"errors"
	"net"
)

// rawConn stands for a descriptor, which links have only on unix systems;
// elsewhere their goroutine writes everything.
type rawConn any

func rawConnOf(net.Conn) rawConn { return nil }

func writeNonBlocking(rawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }
