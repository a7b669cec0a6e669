// Command herdload measures a herd server and serves the baselines it is
// compared with. Each mode prints one line of key=value figures.
//
//	herdload iamat     -addr 127.0.0.1:12000 -c 50 -p 16 -d 10s   closed-loop IAMAT throughput and latency
//	herdload fill      -addr 127.0.0.1:12000 -n 1000000 -c 8 -p 64 store n distinct clients, wait for every reply
//	herdload propagate -addr 127.0.0.1:12000 -listen 127.0.0.1:15000 -n 1000 -rate 20000
//	                   IAMAT at one server until the flood reaches herdload listening as a peer
//	herdload whatsat   -addr 127.0.0.1:12000 -c 10 -client kiwi -radius 10 -bound 5
//	herdload http      -url http://127.0.0.1:18080/... -c 10   closed-loop HTTP GETs (the provider's own cost)
//	herdload places    -listen 127.0.0.1:18080                 a fake Google Places provider that counts requests
//	herdload raw       -addr 127.0.0.1:13000 [-peer host:port] the minimal line server (and flooding relay)
//	herdload compare   [-s section,...] [seconds per run]     the herd against its baselines, one table per measurement
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	modes := map[string]func([]string) error{
		"iamat":     runIAMAT,
		"fill":      runFill,
		"propagate": runPropagate,
		"whatsat":   runWhatsat,
		"http":      runHTTP,
		"places":    runPlaces,
		"raw":       runRaw,
		"compare":   runCompare,
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		usage()
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "herdload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: herdload iamat|fill|propagate|whatsat|http|places|raw|compare [flags]  (-h for flags)")
	os.Exit(2)
}
