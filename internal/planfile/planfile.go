// Package planfile is a saved plan: what `plan <env> -out=<file>` says a deploy would do, per
// service (its action, fingerprint, image digest, secret version, drift to repair and
// Terraform's own saved plan), and what it was computed against (each workspace's state lineage
// and serial, each release's revision). `deploy <env> -plan=<file>` applies exactly that, and
// refuses a plan whose basis moved. It holds no secret value: secrets are named by version.
package planfile

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"
)

// Version is the format this package writes and reads.
const Version = 1

// File is a saved plan.
type File struct {
	Version   int                `json:"version"`
	Env       string             `json:"env"`
	Namespace string             `json:"namespace"`
	Project   string             `json:"project"`
	Made      time.Time          `json:"made"`
	Services  map[string]Service `json:"services"` // every service of the run, changed or not
}

// Service is one service's part of the plan.
type Service struct {
	// Action is installed, upgraded or removed; "" leaves the service as it runs.
	Action      string `json:"action,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Image       string `json:"image,omitempty"`  // repository:tag
	Digest      string `json:"digest,omitempty"` // what the release will run, for a changed service
	Secret      string `json:"secret,omitempty"` // the secret version it mounts (a name, never a value)
	// Repair lists the drift the deploy repairs (an unchanged service's objects).
	Repair []string `json:"repair,omitempty"`
	// Terraform is `terraform plan -out` of the service's workspace, when it has one.
	Terraform []byte `json:"terraform,omitempty"`
	Basis     Basis  `json:"basis"`
}

// Basis is what a service's part was computed against.
type Basis struct {
	Workspace string `json:"workspace"`
	Lineage   string `json:"lineage,omitempty"` // "" when the workspace did not exist
	Serial    int    `json:"serial"`
	Revision  int    `json:"revision"` // the release's newest revision, 0 for none
}

// Write saves the plan to path, readable by its owner alone (it names what runs where).
func Write(path string, f *File) error {
	f.Version = Version
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// Read loads a saved plan, with an error that says how to make one when it cannot.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("saved plan: %w; make one with go run mage.go plan <env> -out=%s", err, path)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s is not a saved plan (%v); make one with go run mage.go plan <env> -out=%s", path, err, path)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%s is a saved plan of format %d, this checkout reads format %d: make a new plan", path, f.Version, Version)
	}
	return &f, nil
}

// Moved says, per service, what of the plan's basis is not so any more, given what is now;
// empty when nothing moved. name is how the user named the plan.
func (f *File) Moved(name string, now map[string]Basis) []string {
	var out []string
	for _, svc := range slices.Sorted(maps.Keys(f.Services)) {
		was, is := f.Services[svc].Basis, now[svc]
		switch {
		case was.Revision != is.Revision:
			out = append(out, fmt.Sprintf("plan %s was made against %s's release revision %d, it is now %d (someone deployed since): make a new plan", name, svc, was.Revision, is.Revision))
		case was.Lineage != is.Lineage:
			out = append(out, fmt.Sprintf("plan %s was made against the state of workspace %s with lineage %q, it now has %q (the state was replaced since): make a new plan", name, was.Workspace, was.Lineage, is.Lineage))
		case was.Serial != is.Serial:
			out = append(out, fmt.Sprintf("plan %s was made against the state of workspace %s at serial %d, it is now %d (someone applied since): make a new plan", name, was.Workspace, was.Serial, is.Serial))
		}
	}
	return out
}
