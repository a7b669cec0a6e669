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

	cfg := iamatConfig{Addr: *addr, Conns: *conns, Pipeline: *pipeline, Duration: *duration, Clients: *clients, Prefix: *prefix}
	res, err := iamatLoad(cfg)
	if err != nil {
		return err
	}
	res.report(fmt.Sprintf("addr=%s c=%d p=%d clients=%d", cfg.Addr, cfg.Conns, cfg.Pipeline, cfg.Clients))
	return nil
}

// iamatConfig is one closed-loop IAMAT run.
type iamatConfig struct {
	Addr     string
	Conns    int
	Pipeline int
	Duration time.Duration // measured, after the warm-up
	Clients  int           // distinct client IDs Prefix-0 .. Prefix-(Clients-1)
	Prefix   string
}

// iamatLoad runs closed-loop IAMATs. Each connection owns a slice of the
// client IDs and picks one at random for every line, so a run touches the
// whole table, as clients at random would, wherever it is measured.
func iamatLoad(cfg iamatConfig) (result, error) {
	perConn := max(cfg.Clients/cfg.Conns, 1)
	return closedLoop(cfg.Addr, cfg.Conns, cfg.Pipeline, cfg.Duration, func(c int) exchange {
		return &iamatExchange{
			prefix: cfg.Prefix,
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
