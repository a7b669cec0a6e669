package herdwal

import (
	"os"
	"strings"
)

// bootIDFile is where Linux tells this boot of the machine from others.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// readBootID returns the machine's boot id, or "" where there is none. A
// log that was not closed lost nothing it wrote unless the machine went down
// too, which a changed boot id tells.
func readBootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	if len(id) > maxShortBytes {
		return ""
	}
	return id
}
