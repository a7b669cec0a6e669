package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts the servers of a comparison and stops them: every process it
// started is stopped by stopAll, which the comparison calls however it
// ends. Each process writes its output to <dir>/<name>.log.
type procs struct {
	ctx context.Context
	dir string
	env []string

	mu      sync.Mutex
	running map[string]*proc
	order   []string // names in the order started, for the logs
}

// proc is one started process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

func newProcs(ctx context.Context, dir string, env []string) *procs {
	return &procs{ctx: ctx, dir: dir, env: env, running: make(map[string]*proc)}
}

// start runs bin with args in the background as name, its output in
// name.log (emptied first). A process already running as name must have
// been stopped.
func (ps *procs) start(name, bin string, args ...string) (*proc, error) {
	logFile, err := os.Create(ps.logPath(name))
	if err != nil {
		return nil, fmt.Errorf("creating %s's log: %w", name, err)
	}
	cmd := exec.CommandContext(ps.ctx, bin, args...)
	cmd.Env = ps.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.running[name] = p
	if !slices.Contains(ps.order, name) {
		ps.order = append(ps.order, name)
	}
	ps.mu.Unlock()
	return p, nil
}

func (ps *procs) logPath(name string) string { return filepath.Join(ps.dir, name+".log") }

// get returns the process running as name.
func (ps *procs) get(name string) *proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.running[name]
}

// alive fails when the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited", p.name)
	default:
		return nil
	}
}

// pid is the process's ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the process named to end (SIGTERM) and waits for it, killing it
// after 5 s.
func (ps *procs) stop(name string) { ps.end(name, syscall.SIGTERM) }

// kill kills the process named at once (SIGKILL) and waits for it.
func (ps *procs) kill(name string) { ps.end(name, syscall.SIGKILL) }

// forget drops a process that ended by itself (a Redis SHUTDOWN) once it
// has exited.
func (ps *procs) forget(name string) {
	if p := ps.get(name); p != nil {
		<-p.done
		ps.remove(name)
	}
}

func (ps *procs) end(name string, sig syscall.Signal) {
	p := ps.get(name)
	if p == nil {
		return
	}
	p.signalAndWait(sig)
	ps.remove(name)
}

func (ps *procs) remove(name string) {
	ps.mu.Lock()
	delete(ps.running, name)
	ps.mu.Unlock()
}

func (p *proc) signalAndWait(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// stopAll stops every process still running: SIGTERM to all, then SIGKILL
// to any still there after 5 s.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	all := make([]*proc, 0, len(ps.running))
	for _, p := range ps.running {
		all = append(all, p)
	}
	ps.running = make(map[string]*proc)
	ps.mu.Unlock()
	for _, p := range all {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, p := range all {
		select {
		case <-p.done:
		case <-deadline:
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// tailLogs writes the last lines of every non-empty log, for a run that
// failed.
func (ps *procs) tailLogs(w io.Writer, lines int) {
	ps.mu.Lock()
	names := slices.Clone(ps.order)
	ps.mu.Unlock()
	for _, name := range names {
		data, err := os.ReadFile(ps.logPath(name))
		if err != nil || len(data) == 0 {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(w, "--- last lines of %s.log\n", name)
		fmt.Fprintln(w, strings.Join(all[max(len(all)-lines, 0):], "\n"))
	}
}

// portOpen says whether something accepts connections on the local port.
func portOpen(port int) bool {
	conn, err := net.DialTimeout("tcp", localAddr(port), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func localAddr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// waitPort waits up to 20 s for p to listen on port; it fails at once if p
// exits.
func waitPort(p *proc, port int) error {
	for range 400 {
		// Alive first: another process may hold the port.
		if err := p.alive(); err != nil {
			return fmt.Errorf("waiting for port %d: %w", port, err)
		}
		if portOpen(port) {
			return p.alive()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %d", port)
}

// errTimeout is wrapped by waitUntil's errors when time ran out.
var errTimeout = errors.New("timed out")

// waitUntil polls cond every interval until it holds, fails, or timeout
// passes; what says what was awaited.
func waitUntil(timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w after %s", what, errTimeout, timeout)
		}
		time.Sleep(interval)
	}
}

// waitWhileAlive is waitUntil for a condition that only p can make true:
// it fails as soon as p exits.
func (p *proc) waitWhileAlive(timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	return waitUntil(timeout, interval, what, func() (bool, error) {
		if err := p.alive(); err != nil {
			return false, err
		}
		return cond()
	})
}
