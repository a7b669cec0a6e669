package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// loggingVariants are how the logging section's herds log: info (INFO to a
// file), buffered (DEBUG through herd_buffered to a file), file (DEBUG
// through Caddy's file writer).
var loggingVariants = []string{"info", "buffered", "file"}

// loggingShapes are the logging section's herds: a star of three (A floods
// to B and C) and the example herd's five servers.
var loggingShapes = []string{"star", "five"}

// loggingLog is the log global option's lines for a variant writing to file.
func loggingLog(variant, file string) string {
	// Not rolled: the runs empty the files, which Caddy then opens to append.
	output := "output file " + file + " {\n\t\t\troll_disabled\n\t\t}"
	switch variant {
	case "buffered":
		return "\t\toutput herd_buffered {\n\t\t\t" + strings.ReplaceAll(output, "\n", "\n\t") + "\n\t\t}\n\t\tlevel DEBUG"
	case "file":
		return "\t\t" + output + "\n\t\tlevel DEBUG"
	default:
		return "\t\t" + output + "\n\t\tlevel INFO"
	}
}

// startLoggingHerd starts a star of three or the example herd's five
// servers (Farmar, Gasol, Hill, Meeks, Young as in examples/) on ports
// port.., every server logging as variant says to logs/<variant>-<name>.
// Clients connect to the first. Each herd's names are its own, so every
// server has a data directory of its own.
func (c *comparison) startLoggingHerd(variant string, port int, shape string) error {
	names := []string{"A", "B", "C"}
	links := [][]int{{1, 2}, {0}, {0}}
	if shape == "five" {
		names = []string{"Farmar", "Gasol", "Hill", "Meeks", "Young"}
		links = [][]int{{3, 4}, {3, 4}, {3}, {0, 1, 2}, {0, 1}}
	}
	prefix := variant + "-" + shape + "-"
	defer func() { c.herdLog = "\t\tlevel INFO" }()
	for i, name := range names {
		c.herdLog = loggingLog(variant, filepath.Join(c.work, "logs", variant+"-"+name))
		cfg := herdConfig{Name: prefix + name, Port: port + i}
		for _, j := range links[i] {
			cfg.Peers = append(cfg.Peers, herdPeer{prefix + names[j], port + j})
		}
		if _, err := c.startHerd(cfg); err != nil {
			return err
		}
	}
	return nil
}

func (c *comparison) sectionLogging() error {
	port := map[string]int{}
	i := 0
	for _, shape := range loggingShapes {
		for _, v := range loggingVariants {
			port[v+"-"+shape] = c.PortBase + 1100 + 5*i
			if err := c.startLoggingHerd(v, port[v+"-"+shape], shape); err != nil {
				return err
			}
			i++
		}
	}

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## IAMAT throughput with every line in and out logged (DEBUG) vs logged at INFO, each to a file per server")
	fmt.Fprintf(w, "# herdload iamat -addr <first server> -c 50 -p P -d %ds -prefix h; star: A floods to B and C; five: the\n", c.Seconds)
	fmt.Fprintln(w, "# example herd's servers and links, clients at Farmar. info: log { output file F; level INFO };")
	fmt.Fprintln(w, "# buffered: log { output herd_buffered { output file F }; level DEBUG }; file: log { output file F; level DEBUG }")
	fmt.Fprintln(w, "# DEBUG entries: one per write of replies per connection, holding its lines in and out; the logs are emptied")
	fmt.Fprintln(w, "# after each run")
	if note := roundsNote(c.Rounds, "the three variants"); note != "" {
		fmt.Fprintln(w, note)
	}
	tw := newTable(w)
	writeRow(tw, "", "herd", "P", "info/s", "buffered/s", "file/s", "buffered/info", "file/info", "log B/IAMAT")
	for _, shape := range loggingShapes {
		for _, pipe := range []int{1, 16} {
			rates := map[string]series{}
			var logBytes series
			err := collectRounds(c.Rounds, func(int) error {
				for _, v := range loggingVariants {
					res, err := iamatLoad(iamatConfig{Addr: localAddr(port[v+"-"+shape]), Conns: 50, Pipeline: pipe,
						Duration: c.duration(), Clients: 100000, Prefix: "h"})
					if err != nil {
						return fmt.Errorf("loading the %s %s herd: %w", v, shape, err)
					}
					rates[v] = append(rates[v], res.opsPerSec())
					logs := filepath.Join(c.work, "logs", v+"-*")
					if v == "file" {
						size, err := filesSize(logs)
						if err != nil {
							return fmt.Errorf("measuring the logs: %w", err)
						}
						logBytes = append(logBytes, float64(size)/(res.opsPerSec()*float64(c.Seconds)))
					}
					if err := emptyFiles(logs); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			writeRow(tw, "", shape, fmt.Sprint(pipe),
				fixed(rates["info"].median(), 0), fixed(rates["buffered"].median(), 0), fixed(rates["file"].median(), 0),
				rates["buffered"].over(rates["info"]).spread(), rates["file"].over(rates["info"]).spread(),
				fixed(series(roundAll(logBytes)).median(), 0))
		}
	}
	return tw.Flush()
}

// roundAll rounds each value to an integer, as figures printed with no
// decimals are before their median is taken.
func roundAll(s series) series {
	out := make(series, len(s))
	for i, v := range s {
		out[i] = float64(int64(v + 0.5))
	}
	return out
}
