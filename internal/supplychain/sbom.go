package supplychain

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SBOM is a CycloneDX JSON document of what a Go binary links, from its build information
// (debug/buildinfo): the main package and its module as the subject, every dependency module
// at its version with its go.sum hash (h1:, a SHA-256; also given as a hex SHA-256 hash), and
// the Go release as the component "std". imageDigest names the image the binary is in; it
// makes the serial number, so the same image always has the same SBOM (no time stamp).
func SBOM(bi *debug.BuildInfo, version, imageDigest string) ([]byte, error) {
	if bi == nil {
		return nil, errors.New("no build information")
	}
	bom := cdx.NewBOM()
	if imageDigest != "" {
		bom.SerialNumber = "urn:uuid:" + uuidOf(imageDigest)
	}
	mainRef := purl(bi.Path, version)
	bom.Metadata = &cdx.Metadata{
		Component: &cdx.Component{
			BOMRef:     mainRef,
			Type:       cdx.ComponentTypeApplication,
			Name:       bi.Path,
			Version:    version,
			PackageURL: mainRef,
			Properties: &[]cdx.Property{
				{Name: "golang:module", Value: bi.Main.Path},
				{Name: "golang:goversion", Value: bi.GoVersion},
				{Name: "oci:image:digest", Value: imageDigest},
			},
		},
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "github.com/dtap-platform/monorepo/internal/supplychain",
		}}},
	}
	std := cdx.Component{BOMRef: purl("std", bi.GoVersion), Type: cdx.ComponentTypeLibrary, Name: "std",
		Version: bi.GoVersion, PackageURL: purl("std", bi.GoVersion)}
	components := []cdx.Component{std}
	deps := []string{std.BOMRef}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		c := cdx.Component{BOMRef: purl(m.Path, m.Version), Type: cdx.ComponentTypeLibrary, Name: m.Path,
			Version: m.Version, PackageURL: purl(m.Path, m.Version)}
		var props []cdx.Property
		if m.Sum != "" {
			props = append(props, cdx.Property{Name: "golang:sum", Value: m.Sum})
			if h, ok := h1Hex(m.Sum); ok {
				c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: h}}
			}
		}
		if d.Replace != nil {
			props = append(props, cdx.Property{Name: "golang:replaces", Value: d.Path + "@" + d.Version})
		}
		if props != nil {
			c.Properties = &props
		}
		components = append(components, c)
		deps = append(deps, c.BOMRef)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: mainRef, Dependencies: &deps}}
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).Encode(bom); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// purl is a Go module's package URL.
func purl(path, version string) string {
	if version == "" {
		return "pkg:golang/" + path
	}
	return "pkg:golang/" + path + "@" + version
}

// h1Hex is the hex form of a go.sum h1: hash (base64 of a SHA-256).
func h1Hex(sum string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sum, "h1:"))
	if !strings.HasPrefix(sum, "h1:") || err != nil || len(b) != sha256.Size {
		return "", false
	}
	return hex.EncodeToString(b), true
}

// uuidOf is a version 5 style UUID made of a SHA-256 of s.
func uuidOf(s string) string {
	h := sha256.Sum256([]byte(s))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// binaryBuildInfo reads the build information of the image's entrypoint (the services'
// images hold one file, app, in their last layer).
func binaryBuildInfo(img v1.Image) (*debug.BuildInfo, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	entry := "app"
	if len(cfg.Config.Entrypoint) > 0 {
		entry = strings.TrimPrefix(cfg.Config.Entrypoint[0], "/")
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		b, err := fileOf(layers[i], entry)
		if err != nil {
			return nil, err
		}
		if b != nil {
			bi, err := buildinfo.Read(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("read the build information of /%s: %w", entry, err)
			}
			return bi, nil
		}
	}
	return nil, fmt.Errorf("the image holds no /%s", entry)
}

// fileOf is the content of name in a layer, nil when the layer does not hold it.
func fileOf(l v1.Layer, name string) ([]byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimPrefix(h.Name, "./") == name && h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}
