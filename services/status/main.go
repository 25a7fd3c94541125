// Command status is the environment's status page: it polls every other service of its
// environment over in-cluster DNS for /version and /readyz, and serves what it sees as an
// HTML page (GET /) and as JSON (GET /status.json). Deploy gives it the list of services
// (SERVICE_URLS, from the chart's discovery); nothing is kept by hand.
package main

import (
	"github.com/dtap-platform/monorepo/services/kit"
	"github.com/dtap-platform/monorepo/services/status/board"
)

func main() { kit.Main(kit.Service{Name: "status", Setup: board.Setup}) }
