package deploy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"slices"
)

// Kubernetes keeps a ConfigMap, and Helm's release record (a Secret), in at most 1 MiB each.
const objectLimit = 1 << 20

// releaseOverhead is what a release record holds besides the config: the chart's files and the
// rest of the manifest and values, compressed (about 20 KiB for this chart), with room to spare.
const releaseOverhead = 64 << 10

// checkConfigSize refuses a service's config files (values `config`, mounted from a ConfigMap)
// that Kubernetes could not store, before anything is written: the ConfigMap holds them once, and
// Helm's release record holds them twice (in the values and in the manifest), gzipped and then
// base64-encoded. So about 1 MiB of text that compresses passes; as much of random data does not.
func checkConfigSize(service string, merged map[string]any) error {
	files, _ := merged["config"].(map[string]any)
	if len(files) == 0 {
		return nil
	}
	var raw bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(files)) {
		text, _ := files[name].(string)
		raw.WriteString(name)
		raw.WriteString(text)
	}
	fix := "keep large data out of config: bake it into the image, or serve it from a volume or an object store; or split the file"
	if raw.Len() > objectLimit {
		return fmt.Errorf("service %s: its config files hold %d bytes, and a ConfigMap holds at most %d (Kubernetes' limit, 1 MiB); %s", service, raw.Len(), objectLimit, fix)
	}
	// Only content that compresses to more than about a third of the limit can overflow the
	// release record: smaller content is not compressed here at all (a compressor costs 1 MiB).
	if raw.Len() < (objectLimit-releaseOverhead)*3/8 {
		return nil
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	_, _ = w.Write(raw.Bytes())
	_ = w.Close()
	if need := 2*gz.Len()*4/3 + releaseOverhead; need > objectLimit {
		return fmt.Errorf("service %s: its config files (%d bytes) compress only to %d, and Helm's release record, a Secret of at most 1 MiB, holds them twice, compressed and base64-encoded (about %d bytes); %s", service, raw.Len(), gz.Len(), need, fix)
	}
	return nil
}
