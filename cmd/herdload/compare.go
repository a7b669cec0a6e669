package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// compareUsage is what `herdload compare -h` says each section measures.
const compareUsage = `usage: herdload compare [-s section,...] [-d seconds] [flags] [seconds per run, default 5]

Measures the herd against baselines run on the same machine in the same run,
and prints one table per measurement with the ratio to its baseline:

  iamat      IAMAT throughput: a herd server with two live peers vs herdload's
             raw line server vs Redis with two replicas (GEOADD and SET
             through redis-benchmark), same connections and pipelining
  propagate  IAMAT at A until the flood reaches a fake peer three hops away
             (A -> B -> C -> herdload), quiescent and under an open-loop load
             at half A's measured maximum; vs three raw relays
  memory     RSS and heap growth per stored client at 1k, 100k and 1M clients,
             and RSS once every client has been updated three more times;
             vs Redis storing the same records (SET client "AT ...")
  catchup    a server killed (-9) and restarted at once relearns a 1M-client
             table from its peer: time and bytes; vs a Redis replica's full
             resync of the same records, and vs the table's own size
  whatsat    WHATSAT throughput against a local fake Google provider, beside
             the provider's own throughput, with upstream requests per WHATSAT
  scale      IAMAT throughput as the table grows (1k, 100k, 1M) and as
             connections grow (10, 100, 1000); vs the smallest, vs raw, and
             vs Redis + 2 replicas updating as many keys
  durability IAMAT throughput of the star with storage off, fsync everysec
             and fsync always, vs Redis + 2 replicas with AOFs (everysec,
             always); IAMAT latency while a snapshot of 1M clients is written
  restart    a server holding 1M clients killed (-9) and restarted: time
             until it answers for the last one, disk bytes per client; vs
             Redis loading its AOF and its RDB. Catch-up after 1,000 and
             100,000 of 1M clients changed while a peer was down: bytes and
             seconds, vs the whole table and vs a Redis replica's PSYNC
  logging    IAMAT throughput with every line in and out logged (DEBUG) to a
             file through the herd_buffered writer, and through Caddy's file
             writer alone, vs the same herd logging at INFO to a file: the
             star of three and the five servers of the example herd

It builds the herd's caddy from ./cmd/caddy of the module it runs in, and
needs Go and redis-server, redis-cli and redis-benchmark (Debian's
redis-server package). The load runs in this process. Every server it starts
is stopped when it ends, however it ends.

The environment variables ROUNDS, PORT_BASE, PROBES, MEMORY_SIZES,
CATCHUP_CLIENTS, SCALE_SIZES and SCALE_CONNS set the defaults of the flags of
the same names:

`

// compareSections are the sections in the order a full run runs them.
var compareSections = []string{"iamat", "propagate", "memory", "catchup", "whatsat", "scale", "durability", "restart", "logging"}

// compareConfig is what a comparison measures and how long.
type compareConfig struct {
	Sections []string
	Seconds  int // measured per run, after a 1 s warm-up
	// Rounds is how many times each IAMAT and scale row measures the herd
	// and its baselines in turn, and the propagation probes run on the herd
	// and the raw relays in turn.
	Rounds   int
	PortBase int // ports PortBase .. PortBase+2400 are used
	Probes   int // propagation probes per phase
	// MemorySizes are the clients of the memory section's rows.
	MemorySizes []int
	// CatchupClients are the clients of the catch-up, of the durability
	// section's snapshot and of the restart section.
	CatchupClients int
	ScaleSizes     []int
	ScaleConns     []int
}

// comparison is one run of herdload compare.
type comparison struct {
	compareConfig
	out      io.Writer
	root     string // the module's directory
	work     string // the run's temporary directory
	caddy    string // the herd's caddy binary
	herdload string // this binary, for raw servers and the places provider
	procs    *procs
	// herdLog holds the lines of the log global option of the herd servers
	// started next.
	herdLog string
}

func (c *comparison) duration() time.Duration { return time.Duration(c.Seconds) * time.Second }

func runCompare(args []string) error {
	cfg, err := parseCompareFlags(args)
	if err != nil {
		return err
	}
	command := compareCommandLine(args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	work, err := os.MkdirTemp("", "herdload-compare-")
	if err != nil {
		return fmt.Errorf("creating the run's directory: %w", err)
	}
	// Caddy's autosaved config and data stay in the run's folder.
	env := append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(work, "config"), "XDG_DATA_HOME="+filepath.Join(work, "data"))
	c := &comparison{compareConfig: cfg, out: os.Stdout, work: work, procs: newProcs(ctx, work, env), herdLog: "\t\tlevel INFO"}

	var once sync.Once
	cleanup := func(failed bool) {
		once.Do(func() {
			c.procs.stopAll()
			if failed {
				c.procs.tailLogs(os.Stderr, 5)
			}
			os.RemoveAll(work)
		})
	}
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "herdload: %s: stopping the servers\n", sig)
		cancel()
		cleanup(false)
		os.Exit(130)
	}()

	err = c.run(command)
	cleanup(err != nil)
	return err
}

// parseCompareFlags reads the flags, their defaults from the environment.
func parseCompareFlags(args []string) (compareConfig, error) {
	var cfg compareConfig
	var errs []error
	envInt := func(name string, def int) int {
		v, err := intsFromEnv(name, []int{def})
		errs = append(errs, err)
		return v[0]
	}
	envInts := func(name string, def []int) []int {
		v, err := intsFromEnv(name, def)
		errs = append(errs, err)
		return v
	}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), compareUsage)
		fs.PrintDefaults()
	}
	sections := fs.String("s", strings.Join(compareSections, ","), "the sections to run, comma-separated")
	fs.IntVar(&cfg.Seconds, "d", 5, "seconds measured per run, after a 1 s warm-up (a trailing argument says the same)")
	fs.IntVar(&cfg.Rounds, "rounds", envInt("ROUNDS", 1), "ROUNDS: how many times each IAMAT and scale row measures the herd and its baselines in turn (and the propagation probes run); with more, rows show medians and each ratio's range")
	fs.IntVar(&cfg.PortBase, "port-base", envInt("PORT_BASE", 14000), "PORT_BASE: ports PORT_BASE .. PORT_BASE+2400 are used")
	fs.IntVar(&cfg.Probes, "probes", envInt("PROBES", 1000), "PROBES: propagation probes per phase")
	fs.IntVar(&cfg.CatchupClients, "catchup-clients", envInt("CATCHUP_CLIENTS", 1000000), "CATCHUP_CLIENTS: clients of the catch-up, of the durability section's snapshot and of the restart section")
	memory := fs.String("memory-sizes", joinInts(envInts("MEMORY_SIZES", []int{1000, 100000, 1000000})), "MEMORY_SIZES: clients of the memory rows")
	scaleSizes := fs.String("scale-sizes", joinInts(envInts("SCALE_SIZES", []int{1000, 100000, 1000000})), "SCALE_SIZES: table sizes of the scale section")
	scaleConns := fs.String("scale-conns", joinInts(envInts("SCALE_CONNS", []int{10, 100, 1000})), "SCALE_CONNS: connections of the scale section")
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 1 {
		return cfg, fmt.Errorf("one argument at most, the seconds per run, not %q", fs.Args())
	}
	if fs.NArg() == 1 {
		s, err := strconv.Atoi(fs.Arg(0))
		if err != nil || s <= 0 {
			return cfg, fmt.Errorf("the seconds per run must be a positive integer, not %q", fs.Arg(0))
		}
		cfg.Seconds = s
	}
	var err error
	if cfg.MemorySizes, err = parseInts(*memory); err != nil {
		return cfg, fmt.Errorf("-memory-sizes: %w", err)
	}
	if cfg.ScaleSizes, err = parseInts(*scaleSizes); err != nil {
		return cfg, fmt.Errorf("-scale-sizes: %w", err)
	}
	if cfg.ScaleConns, err = parseInts(*scaleConns); err != nil {
		return cfg, fmt.Errorf("-scale-conns: %w", err)
	}
	for _, s := range strings.Split(*sections, ",") {
		if !slices.Contains(compareSections, s) {
			return cfg, fmt.Errorf("unknown section %s (%s)", s, strings.Join(compareSections, ", "))
		}
		cfg.Sections = append(cfg.Sections, s)
	}
	cfg.Rounds = max(cfg.Rounds, 1)
	return cfg, nil
}

// intsFromEnv reads the environment variable name as integers separated by
// spaces or commas; def when it is unset.
func intsFromEnv(name string, def []int) ([]int, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := parseInts(v)
	if err != nil {
		return def, fmt.Errorf("reading %s: %w", name, err)
	}
	return n, nil
}

// parseInts reads integers separated by spaces or commas.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no integers")
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}

// compareCommandLine is the command as the header shows it, with the
// environment variables that set its figures.
func compareCommandLine(args []string) string {
	var parts []string
	for _, name := range []string{"ROUNDS", "PORT_BASE", "PROBES", "MEMORY_SIZES", "CATCHUP_CLIENTS", "SCALE_SIZES", "SCALE_CONNS"} {
		if v, ok := os.LookupEnv(name); ok {
			if strings.ContainsAny(v, " ,") {
				v = strconv.Quote(v)
			}
			parts = append(parts, name+"="+v)
		}
	}
	parts = append(parts, "herdload compare")
	parts = append(parts, args...)
	return strings.Join(parts, " ")
}

// run builds the servers, prints the header and runs the sections.
func (c *comparison) run(command string) error {
	if err := c.findTools(); err != nil {
		return err
	}
	raiseOpenFiles()
	fmt.Fprintln(os.Stderr, "building...")
	c.caddy = filepath.Join(c.work, "caddy")
	build := exec.CommandContext(c.procs.ctx, "go", "build", "-o", c.caddy, "./cmd/caddy")
	build.Dir = c.root
	// Interrupted, the build stops whole: the compiler and linker too,
	// which would otherwise write into the run's directory once removed.
	build.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	build.Cancel = func() error { return syscall.Kill(-build.Process.Pid, syscall.SIGKILL) }
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building caddy: %w", err)
	}
	c.header(command)
	for _, s := range c.Sections {
		fmt.Fprintf(os.Stderr, "running %s...\n", s)
		err := c.section(s)
		if err != nil {
			return fmt.Errorf("section %s: %w", s, err)
		}
		c.procs.stopAll()
	}
	return nil
}

func (c *comparison) section(name string) error {
	switch name {
	case "logging":
		return c.sectionLogging()
	case "iamat":
		return c.sectionIAMAT()
	case "propagate":
		return c.sectionPropagate()
	case "memory":
		return c.sectionMemory()
	case "catchup":
		return c.sectionCatchup()
	case "whatsat":
		return c.sectionWhatsat()
	case "scale":
		return c.sectionScale()
	case "restart":
		return c.sectionRestart()
	case "durability":
		return c.sectionDurability()
	}
	return fmt.Errorf("not ported yet")
}

// findTools finds the module to build, this binary and the Redis tools.
func (c *comparison) findTools() error {
	for _, tool := range []string{"go", "redis-server", "redis-cli", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s (redis-*: apt-get install redis-server): %w", tool, err)
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return fmt.Errorf("finding the module to build (run it inside caddy-herd): %v", err)
	}
	c.root = filepath.Dir(mod)
	if c.herdload, err = os.Executable(); err != nil {
		return fmt.Errorf("finding herdload's own binary: %w", err)
	}
	return nil
}

// raiseOpenFiles lifts the limit on open files, for this process and the
// servers it starts: 1000 client connections, plus peers, Redis and the
// load.
func raiseOpenFiles() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	lim.Cur = min(max(lim.Cur, 65536), lim.Max)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// header prints what was run, where and when.
func (c *comparison) header(command string) {
	commit := strings.TrimSpace(outputOf(c.root, "git", "rev-parse", "--short", "HEAD"))
	if commit == "" {
		commit = "unknown"
	}
	if exec.Command("git", "-C", c.root, "diff", "--quiet").Run() != nil {
		commit += " (with uncommitted changes)"
	}
	goVersion := strings.TrimPrefix(strings.TrimSpace(outputOf(c.root, "go", "version")), "go version ")
	redisVersion := ""
	for _, f := range strings.Fields(outputOf(c.root, "redis-server", "--version")) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			redisVersion = v
		}
	}
	fmt.Fprintf(c.out, "command: %s\n", command)
	fmt.Fprintf(c.out, "date:    %s\n", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(c.out, "commit:  %s\n", commit)
	fmt.Fprintf(c.out, "machine: %d cores, %s, %s; client and servers share it\n", runtime.NumCPU(), cpuModel(), memTotal())
	fmt.Fprintf(c.out, "go:      %s\n", goVersion)
	fmt.Fprintf(c.out, "redis:   %s\n", redisVersion)
	fmt.Fprintf(c.out, "runs:    %d s measured after a 1 s warm-up\n", c.Seconds)
}

// outputOf runs a command in dir and returns its output, empty if it fails.
func outputOf(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, _ := cmd.Output()
	return string(out)
}

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name", func(v string) string { return v })
}

func memTotal() string {
	return procField("/proc/meminfo", "MemTotal", func(v string) string {
		kib, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
		return fmt.Sprintf("%.0f GiB", kib/1048576)
	})
}

// procField returns format of the first value of key in a /proc file of
// "key: value" lines.
func procField(path, key string, format func(string) string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return format(strings.TrimSpace(v))
		}
	}
	return "unknown"
}
