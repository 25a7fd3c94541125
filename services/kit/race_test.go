//go:build race

package kit

// raceEnabled: the tests run under the race detector, which slows code 5 to 10 times.
const raceEnabled = true

// raceSlowdown scales the absolute time bounds of the timing tests under the race detector.
const raceSlowdown = 10
