//go:build race

package examples

// raceEnabled builds the servers under test with the race detector too, so
// that a data race in a running herd fails the tests.
const raceEnabled = true
