//go:build !race

package kit

const raceEnabled = false

const raceSlowdown = 1
