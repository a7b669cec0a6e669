package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
)

func runWhatsat(args []string) error {
	fs := flag.NewFlagSet("whatsat", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:12000", "the server's host:port")
	conns := fs.Int("c", 10, "connections")
	pipeline := fs.Int("p", 1, "queries in flight on each connection")
	duration := fs.Duration("d", 5*time.Second, "how long to measure (after a 1 s warm-up)")
	client := fs.String("client", "", "ask about this one client every time (identical queries)")
	clients := fs.Int("clients", 1000, "without -client: ask about prefix-0 .. prefix-(clients-1) in turn, each connection its own slice, so no two queries in flight are the same")
	prefix := fs.String("prefix", "fill", "without -client: the client ID prefix, as given to fill")
	radius := fs.String("radius", "10", "radius in km")
	bound := fs.Int("bound", 5, "the most places to answer")
	fs.Parse(args)

	cfg := whatsatConfig{Addr: *addr, Conns: *conns, Pipeline: *pipeline, Duration: *duration,
		Client: *client, Clients: *clients, Prefix: *prefix, Radius: *radius, Bound: *bound}
	res, err := whatsatLoad(cfg)
	if err != nil {
		return err
	}
	queries := "distinct"
	if cfg.Client != "" {
		queries = "identical"
	}
	res.report(fmt.Sprintf("addr=%s c=%d p=%d queries=%s", cfg.Addr, cfg.Conns, cfg.Pipeline, queries))
	return checkWhatsatAnswered(res)
}

// whatsatConfig is one closed-loop WHATSAT run: about Client every time, or
// without it about Prefix-0 .. Prefix-(Clients-1) in turn.
type whatsatConfig struct {
	Addr     string
	Conns    int
	Pipeline int
	Duration time.Duration // measured, after the warm-up
	Client   string
	Clients  int
	Prefix   string
	Radius   string // in km, as sent
	Bound    int
}

// whatsatLoad runs closed-loop WHATSATs as cfg says.
func whatsatLoad(cfg whatsatConfig) (result, error) {
	tail := " " + cfg.Radius + " " + strconv.Itoa(cfg.Bound) + "\n"
	perConn := max(cfg.Clients/cfg.Conns, 1)
	return closedLoop(cfg.Addr, cfg.Conns, cfg.Pipeline, cfg.Duration, func(c int) exchange {
		if cfg.Client != "" {
			return &whatsatExchange{fixed: cfg.Client, tail: tail}
		}
		return &whatsatExchange{prefix: cfg.Prefix, first: c * perConn, count: perConn, tail: tail}
	})
}

// checkWhatsatAnswered fails a run whose every WHATSAT was answered `?`.
func checkWhatsatAnswered(res result) error {
	if res.invalid == res.total {
		return errors.New("every WHATSAT was answered `?`: is the client stored and a provider configured?")
	}
	return nil
}

// whatsatExchange asks WHATSAT about one fixed client, or about the clients
// prefix-first .. prefix-(first+count-1) in turn.
type whatsatExchange struct {
	fixed        string
	prefix       string
	first, count int
	next         int
	tail         string // " <radius> <bound>\n"
}

func (x *whatsatExchange) appendRequest(dst []byte, _ time.Time) []byte {
	dst = append(dst, "WHATSAT "...)
	if x.fixed != "" {
		dst = append(dst, x.fixed...)
	} else {
		dst = appendClientID(dst, x.prefix, x.first+x.next)
		x.next = (x.next + 1) % x.count
	}
	return append(dst, x.tail...)
}

// readReply reads a WHATSAT reply: the AT line, the JSON and an empty line,
// or a single `? <line>`.
func (x *whatsatExchange) readReply(r *bufio.Reader) (bool, error) {
	first, partial := true, false
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			first, partial = false, true // a long JSON line: read on to its end
			continue
		}
		if err != nil {
			return false, err
		}
		if first && line[0] == '?' {
			return false, nil
		}
		if len(line) == 1 && !partial {
			return true, nil
		}
		first, partial = false, false
	}
}
