package main

import (
	"slices"
	"testing"
)

// TestCompareFlagsReadTheEnvironment checks that the documented variables
// still set the comparison, and that a trailing argument is the seconds.
func TestCompareFlagsReadTheEnvironment(t *testing.T) {
	t.Setenv("ROUNDS", "3")
	t.Setenv("PORT_BASE", "16000")
	t.Setenv("MEMORY_SIZES", "1000 5000")
	cfg, err := parseCompareFlags([]string{"-s", "logging,iamat", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rounds != 3 || cfg.PortBase != 16000 || cfg.Seconds != 2 || !slices.Equal(cfg.MemorySizes, []int{1000, 5000}) ||
		!slices.Equal(cfg.Sections, []string{"logging", "iamat"}) || !slices.Equal(cfg.ScaleConns, []int{10, 100, 1000}) {
		t.Errorf("config %+v", cfg)
	}
	if got := compareCommandLine([]string{"-s", "logging", "2"}); got != `ROUNDS=3 PORT_BASE=16000 MEMORY_SIZES="1000 5000" herdload compare -s logging 2` {
		t.Errorf("command line %q", got)
	}
}

func TestCompareFlagsRefuseAnUnknownSection(t *testing.T) {
	if _, err := parseCompareFlags([]string{"-s", "iamat,bogus"}); err == nil {
		t.Error("an unknown section was accepted")
	}
}
