package examples

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNetwork is a set of network namespaces of the test's own, one per
// server, joined by a bridge in a switch namespace, with one more link from
// this namespace so the test can talk to every server. Addresses come from
// 198.18.0.0/15, the range set aside for network tests.
type testNetwork struct {
	t      *testing.T
	id     string
	subnet string // "198.18.N"
	sw     string // the switch namespace
	hosts  []string
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// newTestNetwork builds the switch, or skips the test where this machine does
// not let it make namespaces.
func newTestNetwork(t *testing.T) *testNetwork {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root; the partition is covered by TestFaultPartitionAndHeal's TCP proxies")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2); the partition is covered by TestFaultPartitionAndHeal's TCP proxies")
	}
	b := make([]byte, 2)
	rand.Read(b)
	n := &testNetwork{t: t, id: hex.EncodeToString(b), subnet: fmt.Sprintf("198.18.%d", 1+int(b[0])%250)}
	n.sw = "hsw" + n.id
	if err := ipCmd("netns", "add", n.sw); err != nil {
		t.Skipf("cannot make network namespaces here (%v); the partition is covered by TestFaultPartitionAndHeal's TCP proxies", err)
	}
	t.Cleanup(n.remove)
	root, swSide := "hr"+n.id, "hs"+n.id
	for _, args := range [][]string{
		{"-n", n.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", n.sw, "link", "set", "br0", "up"},
		{"link", "add", root, "type", "veth", "peer", "name", swSide},
		{"link", "set", swSide, "netns", n.sw},
		{"-n", n.sw, "link", "set", swSide, "master", "br0", "up"},
		{"addr", "add", n.subnet + ".100/24", "dev", root},
		{"link", "set", root, "up"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// addHost makes namespace number i, at address subnet.(i+1), and returns its
// name and address.
func (n *testNetwork) addHost(i int) (string, string) {
	n.t.Helper()
	ns, inside, outside := fmt.Sprintf("hh%s-%d", n.id, i), fmt.Sprintf("hh%sa%d", n.id, i), n.port(i)
	addr := fmt.Sprintf("%s.%d", n.subnet, i+1)
	n.hosts = append(n.hosts, ns)
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", inside, "type", "veth", "peer", "name", outside},
		{"link", "set", inside, "netns", ns},
		{"link", "set", outside, "netns", n.sw},
		{"-n", ns, "addr", "add", addr + "/24", "dev", inside},
		{"-n", ns, "link", "set", inside, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", n.sw, "link", "set", outside, "master", "br0", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			n.t.Fatal(err)
		}
	}
	return ns, addr
}

// port is the switch's port to host i.
func (n *testNetwork) port(i int) string { return fmt.Sprintf("hh%sb%d", n.id, i) }

// cut unplugs host i from the switch: its packets are dropped, as in a real
// partition, rather than refused.
func (n *testNetwork) cut(i int) {
	n.t.Helper()
	if err := ipCmd("-n", n.sw, "link", "set", n.port(i), "down"); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNetwork) heal(i int) {
	n.t.Helper()
	if err := ipCmd("-n", n.sw, "link", "set", n.port(i), "up"); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNetwork) remove() {
	for _, ns := range append(n.hosts, n.sw) {
		ipCmd("netns", "del", ns)
	}
}

// startHerdInNamespaces runs the example herd with each server in its own
// namespace and address, all answering WHATSAT from the places file.
func startHerdInNamespaces(t *testing.T) (*herd, *testNetwork) {
	t.Helper()
	n := newTestNetwork(t)
	h := &herd{t: t, dir: t.TempDir()}
	addrs := make([]string, len(serverNames))
	spaces := make([]string, len(serverNames))
	for i := range serverNames {
		spaces[i], addrs[i] = n.addHost(i)
	}
	for i, name := range serverNames {
		config := exampleConfig(t, name, h.dir, "places file "+mustAbs(t, "places.json"), func(j int, kind portKind) string {
			return addrs[j] + map[portKind]string{herdAddr: ":12000", adminAddr: ":2019", statusAddr: ":13000"}[kind]
		})
		s := &server{name: name, port: 12000, adminPort: 2019, host: addrs[i], netns: spaces[i], adapter: "caddyfile",
			config: filepath.Join(h.dir, name+".caddyfile"), output: filepath.Join(h.dir, name+".out")}
		if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		h.servers = append(h.servers, s)
	}
	t.Cleanup(h.stop)
	for _, s := range h.servers {
		h.start(s)
	}
	return h, n
}

// TestFaultPartitionNetns cuts Meeks off the network, so that Hill, whose only
// peer is Meeks, is alone too; updates land on every side; after healing,
// every server converges and last-writer-wins decides the same everywhere.
func TestFaultPartitionNetns(t *testing.T) {
	h, n := startHerdInNamespaces(t)
	h.waitConverged(0, h.servers...)
	h.waitUntil("every link is up", func() bool {
		for _, s := range h.servers {
			for _, p := range h.peers(s) {
				if !p.Up {
					return false
				}
			}
		}
		return true
	})

	var cutAt time.Time
	took, acks := partitionScenario(t, h, func() { n.cut(meeks); cutAt = time.Now() }, func() {
		n.heal(meeks)
		t.Logf("Meeks was unplugged for %v", time.Since(cutAt))
	}, false)
	t.Logf("partition in network namespaces (%d updates acknowledged): converged %v after healing", acks, took)
}
