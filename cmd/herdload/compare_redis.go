package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// redisLine is the value the IAMAT comparisons SET for each client, an AT
// line about the size of the one a herd server stores for a herdload IAMAT.
const redisLine = "AT Redis +0.000123456 client-__rand_int__ +34.068930-118.445127 1764000000.123456789"

// startRedis starts redis-server as name on port, in a directory of its
// own, without persistence unless args say otherwise (later arguments win),
// and waits for its port.
func (c *comparison) startRedis(name string, port int, args ...string) (*proc, error) {
	p, err := c.launchRedis(name, port, args...)
	if err != nil {
		return nil, err
	}
	return p, waitPort(p, port)
}

// launchRedis starts redis-server as startRedis does, without waiting for
// its port: a restart times that.
func (c *comparison) launchRedis(name string, port int, args ...string) (*proc, error) {
	dir := filepath.Join(c.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s's directory: %w", name, err)
	}
	all := append([]string{"--port", strconv.Itoa(port), "--dir", dir, "--save", "", "--appendonly", "no"}, args...)
	return c.procs.start(name, "redis-server", all...)
}

// startRedisAOF starts redis-server appending every write to its AOF,
// synced as fsync says (always, everysec).
func (c *comparison) startRedisAOF(name string, port int, fsync string, args ...string) (*proc, error) {
	return c.startRedis(name, port, append([]string{"--appendonly", "yes", "--appendfsync", fsync}, args...)...)
}

// startRedisReplicated starts a Redis primary on port with two replicas on
// the next two ports, each started with args, and waits until both are
// online.
func (c *comparison) startRedisReplicated(name string, port int, args ...string) error {
	if _, err := c.startRedis(name, port, args...); err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		replica := append(slicesClone(args), "--replicaof", "127.0.0.1", strconv.Itoa(port))
		if _, err := c.startRedis(fmt.Sprintf("%s%d", name, i), port+i, replica...); err != nil {
			return err
		}
	}
	return waitUntil(30*time.Second, 20*time.Millisecond, "two online replicas", func() (bool, error) {
		info, _ := redisCLI(port, "info", "replication")
		return strings.Count(info, "state=online") == 2, nil
	})
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// redisCLI runs redis-cli against the server on port and returns its
// output without carriage returns.
func redisCLI(port int, args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(port)}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(strings.ReplaceAll(string(out), "\r", "")), nil
}

// redisInfo is key's value in an INFO section of the server on port.
func redisInfo(port int, section, key string) (string, error) {
	info, err := redisCLI(port, "info", section)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no %s in INFO %s of Redis on %d", key, section, port)
}

// redisInfoInt is key's integer value in an INFO section.
func redisInfoInt(port int, section, key string) (int64, error) {
	v, err := redisInfo(port, section, key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading %s of Redis on %d: %w", key, port, err)
	}
	return n, nil
}

// redisDBSize is how many keys the server on port holds; -1 when it does
// not answer.
func redisDBSize(port int) int64 {
	out, err := redisCLI(port, "dbsize")
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

var requestsPerSecond = regexp.MustCompile(`([0-9.]+) requests per second`)

// redisBenchmark runs redis-benchmark -q against port with args and
// returns the requests per second it reports last.
func redisBenchmark(port int, args ...string) (float64, error) {
	all := append([]string{"-p", strconv.Itoa(port), "-q"}, args...)
	out, err := exec.Command("redis-benchmark", all...).Output()
	if err != nil {
		return 0, fmt.Errorf("running redis-benchmark %s: %w", strings.Join(args, " "), err)
	}
	m := requestsPerSecond.FindAllStringSubmatch(strings.ReplaceAll(string(out), "\r", "\n"), -1)
	if m == nil {
		return 0, fmt.Errorf("redis-benchmark printed no rate: %q", out)
	}
	return strconv.ParseFloat(m[len(m)-1][1], 64)
}

// redisRun is what a redis-benchmark run against a replicated primary
// measured.
type redisRun struct {
	opsPerSec float64
	// replBytesPerOp is what the primary sent each replica per request
	// (master_repl_offset), rounded to a byte.
	replBytesPerOp float64
}

// redisRequests runs n requests of command through redis-benchmark against
// the primary at port (its replicas on the next two ports), with conns
// connections and pipe requests in flight, on a keyspace of 100000; it
// returns once every replica has applied them, so that the next run starts
// with the replicas caught up, as the herd's peers are.
func redisRequests(port, conns, pipe, n int, command ...string) (redisRun, error) {
	offset0, err := redisInfoInt(port, "replication", "master_repl_offset")
	if err != nil {
		return redisRun{}, err
	}
	args := append([]string{"-c", strconv.Itoa(conns), "-P", strconv.Itoa(pipe), "-n", strconv.Itoa(n), "-r", "100000"}, command...)
	rate, err := redisBenchmark(port, args...)
	if err != nil {
		return redisRun{}, err
	}
	offset1, err := redisInfoInt(port, "replication", "master_repl_offset")
	if err != nil {
		return redisRun{}, err
	}
	for _, replica := range []int{port + 1, port + 2} {
		err := waitUntil(60*time.Second, 20*time.Millisecond, fmt.Sprintf("the replica on %d to catch up", replica), func() (bool, error) {
			o, err := redisInfoInt(replica, "replication", "slave_repl_offset")
			return err == nil && o >= offset1, nil
		})
		if err != nil {
			return redisRun{}, err
		}
	}
	return redisRun{opsPerSec: rate, replBytesPerOp: math.Round(float64(offset1-offset0) / float64(n))}, nil
}

// redisRequestCount is how many requests a redis-benchmark run of conns
// connections with pipe in flight sends: about as long as a herd run,
// between 200,000 and 2,000,000.
func redisRequestCount(conns, pipe int) int {
	return min(max(conns*pipe*2000, 200000), 2000000)
}
