// Package dns replaces lego's providers/dns in the lab's Traefik build only (.ci/lab/images,
// go_traefik). Upstream's file imports all of lego's DNS-01 providers and their cloud SDKs: about
// 850 packages, a third of Traefik's compile. The embedded cluster never asks ACME for a
// certificate, so the lab's image answers every DNS-01 provider with this error instead.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v4/challenge"
)

// NewDNSChallengeProviderByName has upstream's signature; no provider is built in.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("the ACME DNS-01 provider %q is not built into this Traefik image (dtap lab build, .ci/lab/images); use the official traefik image for DNS challenges", name)
}
