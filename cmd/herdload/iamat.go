package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"time"
)

func runIAMAT(args []string) error {
	fs := flag.NewFlagSet("iamat", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:12000", "the server's host:port")
	conns := fs.Int("c", 50, "connections")
	pipeline := fs.Int("p", 1, "lines in flight on each connection")
	duration := fs.Duration("d", 5*time.Second, "how long to measure (after a 1 s warm-up)")
	clients := fs.Int("clients", 100000, "distinct client IDs prefix-0 .. prefix-(clients-1), split among the connections; each IAMAT picks one of its connection's at random")
	prefix := fs.String("prefix", "load", "client ID prefix")
	fs.Parse(args)

	res, err := load(*addr, *conns, *pipeline, *duration, *clients, *prefix)
	if err != nil {
		return err
	}
	res.report(fmt.Sprintf("addr=%s c=%d p=%d clients=%d", *addr, *conns, *pipeline, *clients))
	return nil
}

// load runs closed-loop IAMATs. Each connection owns a slice of the client
// IDs and picks one at random for every line, so a run touches the whole
// table, as clients at random would, wherever it is measured.
func load(addr string, conns, pipeline int, duration time.Duration, clients int, prefix string) (result, error) {
	perConn := max(clients/conns, 1)
	return closedLoop(addr, conns, pipeline, duration, func(c int) exchange {
		return &iamatExchange{
			prefix: prefix,
			first:  c * perConn,
			count:  perConn,
			rand:   rand.New(rand.NewPCG(uint64(c), 0x6865726400)),
		}
	})
}

// iamatExchange sends IAMATs for client IDs first .. first+count-1.
type iamatExchange struct {
	prefix       string
	first, count int
	rand         *rand.Rand
}

func (x *iamatExchange) appendRequest(dst []byte, now time.Time) []byte {
	return appendIAMAT(dst, x.prefix, x.first+x.rand.IntN(x.count), []byte(fixedLocation), now)
}

func (x *iamatExchange) readReply(r *bufio.Reader) (bool, error) {
	line, err := r.ReadSlice('\n')
	return err == nil && len(line) > 0 && line[0] != '?', err
}
