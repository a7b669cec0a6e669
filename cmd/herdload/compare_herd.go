package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// herdPeer is a peer named in a herd server's config.
type herdPeer struct {
	name string
	port int
}

// herdConfig is a herd server of a comparison: it listens on 127.0.0.1:Port,
// with its admin API on AdminPort (0: admin off), and Extra holds more lines
// for its herd block.
type herdConfig struct {
	Name      string
	Port      int
	AdminPort int
	Extra     string
	Peers     []herdPeer
}

// writeCaddyfile writes cfg's Caddyfile as <name>.caddyfile, with the log
// lines c.herdLog holds (INFO unless a section says otherwise: the
// per-message DEBUG entries are not part of the product's cost), and
// returns its path.
func (c *comparison) writeCaddyfile(cfg herdConfig) (string, error) {
	var b strings.Builder
	b.WriteString("{\n")
	if cfg.AdminPort == 0 {
		b.WriteString("\tadmin off\n")
	} else {
		fmt.Fprintf(&b, "\tadmin 127.0.0.1:%d\n", cfg.AdminPort)
	}
	fmt.Fprintf(&b, "\tlog {\n%s\n\t}\n", c.herdLog)
	fmt.Fprintf(&b, "\therd {\n\t\tname %s\n", cfg.Name)
	for _, p := range cfg.Peers {
		fmt.Fprintf(&b, "\t\tpeer %s 127.0.0.1:%d\n", p.name, p.port)
	}
	if cfg.Extra != "" {
		b.WriteString(cfg.Extra + "\n")
	}
	b.WriteString("\t}\n\tlayer4 {\n")
	fmt.Fprintf(&b, "\t\t127.0.0.1:%d {\n", cfg.Port)
	b.WriteString("\t\t\troute {\n\t\t\t\therd {\n\t\t\t\t\tmax_connections 20000\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n")
	path := filepath.Join(c.work, cfg.Name+".caddyfile")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("writing %s's Caddyfile: %w", cfg.Name, err)
	}
	return path, nil
}

// startHerd starts a herd server on a data directory of its own, empty, and
// waits for its port.
func (c *comparison) startHerd(cfg herdConfig) (*proc, error) {
	if err := os.RemoveAll(filepath.Join(c.work, "data", "caddy", "herd", cfg.Name)); err != nil {
		return nil, fmt.Errorf("emptying %s's data: %w", cfg.Name, err)
	}
	if _, err := c.writeCaddyfile(cfg); err != nil {
		return nil, err
	}
	p, err := c.restartHerd(cfg.Name, cfg.Name)
	if err != nil {
		return nil, err
	}
	return p, waitPort(p, cfg.Port)
}

// restartHerd starts the caddy of the Caddyfile written as config, as
// name, on the data it has; it does not wait for its port.
func (c *comparison) restartHerd(name, config string) (*proc, error) {
	return c.procs.start(name, c.caddy, "run", "--adapter", "caddyfile", "--config", filepath.Join(c.work, config+".caddyfile"))
}

// startRaw starts herdload's raw line server on port, forwarding to
// forward when it is not 0, and waits for its port.
func (c *comparison) startRaw(name string, port, forward int) (*proc, error) {
	args := []string{"raw", "-addr", localAddr(port)}
	if forward != 0 {
		args = append(args, "-peer", localAddr(forward))
	}
	p, err := c.procs.start(name, c.herdload, args...)
	if err != nil {
		return nil, err
	}
	return p, waitPort(p, port)
}

// adminClient asks the servers' admin APIs.
var adminClient = &http.Client{Timeout: 10 * time.Second}

// getJSON decodes the JSON at url.
func getJSON(url string) (any, error) {
	resp, err := adminClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", url, err)
	}
	return v, nil
}

// jsonSum adds up every number under key anywhere in v.
func jsonSum(v any, key string) int64 {
	var sum int64
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if n, ok := x.(float64); ok && k == key {
				sum += int64(n)
			} else {
				sum += jsonSum(x, key)
			}
		}
	case []any:
		for _, x := range v {
			sum += jsonSum(x, key)
		}
	}
	return sum
}

// adminSum is the sum of every key in the JSON at the admin API's path; 0
// when nothing answers (a server still starting).
func adminSum(adminPort int, path, key string) int64 {
	v, err := getJSON(fmt.Sprintf("http://127.0.0.1:%d%s", adminPort, path))
	if err != nil {
		return 0
	}
	return jsonSum(v, key)
}

// adminObject is the JSON object at the admin API's path.
func adminObject(adminPort int, path string) (map[string]any, error) {
	v, err := getJSON(fmt.Sprintf("http://127.0.0.1:%d%s", adminPort, path))
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a JSON object", path)
	}
	return m, nil
}

// adminPost posts nothing to the admin API's path and returns the JSON
// object it answers.
func adminPost(adminPort int, path string) (map[string]any, error) {
	resp, err := adminClient.Post(fmt.Sprintf("http://127.0.0.1:%d%s", adminPort, path), "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding the answer to POST %s: %w", path, err)
	}
	return m, nil
}

// field formats a top-level value of a JSON object as text.
func field(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case nil:
		return ""
	case float64:
		return number(v)
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// herdClients is how many clients the server with the admin port holds.
func herdClients(adminPort int) int64 { return adminSum(adminPort, "/herd/stats", "clients") }

// emptyFiles truncates the files that match pattern.
func emptyFiles(pattern string) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Truncate(f, 0); err != nil {
			return fmt.Errorf("emptying %s: %w", f, err)
		}
	}
	return nil
}

// filesSize adds up the sizes of the files that match pattern.
func filesSize(pattern string) (int64, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return 0, err
		}
		total += st.Size()
	}
	return total, nil
}
