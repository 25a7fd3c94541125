// Command api is the monorepo's first service: a small chi HTTP API that shows its
// configuration (GET /config, secrets redacted), with the probes, metrics, access log,
// /version and graceful drain that every service gets from the kit.
//
//	api                 serve (configured by environment variables, see services/kit/config)
//	api probe [URL...]  GET each URL, exit 0 when all answer 2xx
//	api version         print the build information
package main

import "github.com/dtap-platform/monorepo/services/kit"

func main() { kit.Main(kit.Service{Name: "api"}) }
