package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"

	"github.com/dtap-platform/monorepo/internal/usercache"
)

// What each workspace's state says is kept in the user's cache directory (dtap/tfstate/, one
// file per cluster, state namespace, project and environment, readable by the user alone), by
// the UID and resource version of the Secret it was read from: any write of the Secret, by this
// machine or another, changes its version, and the state is read again. It holds what deploy
// reads of the state (the releases, the inputs they were applied with, the serials), which holds
// no secret: secrets never pass through Terraform.

// keptWorkspace is what one workspace's Secret said, at one version.
type keptWorkspace struct {
	UID             types.UID `json:"uid"`
	ResourceVersion string    `json:"resourceVersion"`
	State           State     `json:"state"`
}

// stateCachePath names the cache file of an environment's states, "" when there is no cache
// directory.
func stateCachePath(server, stateNamespace, project, env string) string {
	dir := usercache.Dir("tfstate")
	if dir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\n%s\n%s\n%s", server, stateNamespace, project, env)))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".json")
}

// keptStateFiles is how many environments' states the cache keeps (the newest).
const keptStateFiles = 200

// listThreshold is how many workspaces whose version is new are read with a get each; more are
// read with one list.
const listThreshold = 8

// readWorkspaces reads what every workspace of env says, by workspace name: one metadata list,
// then the kept state of each version known and a read of the others. ok is false when a
// workspace's Secret is in a form this does not know.
func readWorkspaces(ctx context.Context, meta metadata.Interface, secrets corev1client.SecretInterface, namespace, env, project, cachePath string) (map[string]State, bool, error) {
	opts := listBySuffix(project)
	list, err := meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(namespace).List(ctx, opts)
	if err != nil {
		return nil, false, err
	}
	kept := loadKept(cachePath)
	now := map[string]keptWorkspace{}
	var stale []string // the names of the Secrets to read
	byName := map[string]string{}
	for _, item := range list.Items {
		ws := item.Labels[workspaceLabel]
		if ws != env && serviceOfWorkspace(env, ws) == "" {
			continue
		}
		if k, ok := kept[ws]; ok && k.UID == item.UID && k.ResourceVersion == item.ResourceVersion {
			now[ws] = k
			continue
		}
		stale = append(stale, item.Name)
		byName[item.Name] = ws
	}
	fresh := map[string]*corev1.Secret{}
	switch {
	case len(stale) > listThreshold:
		all, err := secrets.List(ctx, opts)
		if err != nil {
			return nil, false, err
		}
		for i, sec := range all.Items {
			if _, want := byName[sec.Name]; want {
				fresh[sec.Name] = &all.Items[i]
			}
		}
	case len(stale) > 0:
		var mu sync.Mutex
		if err := forEach(stale, listThreshold, func(name string) error {
			sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil // deleted since the list (a destroy meanwhile): the workspace is gone
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			fresh[name] = sec
			return nil
		}); err != nil {
			return nil, false, err
		}
	}
	// The new versions are decompressed and parsed on every core.
	var mu sync.Mutex
	unknown := false
	_ = forEach(slices.Collect(maps.Keys(fresh)), runtime.GOMAXPROCS(0), func(name string) error {
		sec := fresh[name]
		one, ok := stateOf(sec)
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			unknown = true
			return nil
		}
		now[byName[name]] = keptWorkspace{UID: sec.UID, ResourceVersion: sec.ResourceVersion, State: one}
		return nil
	})
	if unknown {
		return nil, false, nil // terraform reads what this cannot
	}
	if len(fresh) > 0 || len(now) != len(kept) {
		keepStates(cachePath, now)
	}
	out := make(map[string]State, len(now))
	for ws, k := range now {
		out[ws] = k.State
	}
	return out, true, nil
}

// loadKept reads the kept states; none when the file is missing or damaged.
func loadKept(path string) map[string]keptWorkspace {
	kept := map[string]keptWorkspace{}
	if path == "" {
		return kept
	}
	b, ok := usercache.Read(filepath.Dir(path), filepath.Base(path))
	if !ok || json.Unmarshal(b, &kept) != nil {
		return map[string]keptWorkspace{}
	}
	return kept
}

// keepStates replaces the kept states with what was read now (the workspaces gone are dropped).
func keepStates(path string, now map[string]keptWorkspace) {
	if path == "" {
		return
	}
	if b, err := json.Marshal(now); err == nil {
		usercache.Keep(filepath.Dir(path), filepath.Base(path), b, keptStateFiles)
	}
}
