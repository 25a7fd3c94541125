package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	helmrelease "helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/chart"
	"github.com/dtap-platform/monorepo/internal/environments"
	"github.com/dtap-platform/monorepo/internal/image"
	"github.com/dtap-platform/monorepo/internal/inputs"
	"github.com/dtap-platform/monorepo/internal/release"
	"github.com/dtap-platform/monorepo/internal/secrets"
	"github.com/dtap-platform/monorepo/internal/services"
)

// Want is what one service of the run should run in the environment. It is decided once, by
// desire, and deploy, plan, render and promote read it: which image (content tag, pipeline tag,
// pin), which secret version, which peers, which front door, which values, and a fingerprint of
// all of that.
type Want struct {
	Service services.Service
	Inputs  inputs.Manifest // what the image is built from; empty for a pin
	Tag     string          // the image's own tag: the content tag, a pin's tag, or SKIP_BUILD's IMAGE_TAG
	// Ref is what the release runs: repository, the tag it is deployed under (IMAGE_TAG beside
	// the content tag when set) and, once known, the digest.
	Ref       image.Ref
	Pinned    bool // promote's pin: exactly this digest, never built
	Build     bool // the registry lacks Tag: deploy builds and publishes it (resolve sets it)
	Missing   bool // the registry lacks Tag and SKIP_BUILD is set: deployed by tag all the same
	Merged    map[string]any
	Secret    string // the secret version it mounts, "" for none
	NewSecret bool   // that version does not exist yet: deploy writes it first
	// SecretKeys is what the run does to its secret keys (names only), when it gives or removes
	// one; secretData is the data of the version it mounts then, computed once here so that plan
	// and deploy name and write the same version. Never printed.
	SecretKeys secrets.Diff
	secretData map[string][]byte
	FrontDoor  map[string]any
	FrontURL   string // where the embedded cluster's front door serves it, "" for none
	// Values are the documents Terraform applies, in order; the last one, deploy's own, carries
	// the fingerprint.
	Values      []string
	Fingerprint string

	smoked map[string]any // its /config, once the smoke check read it
}

// Inputs are the Terraform inputs of the service.
func (w *Want) TerraformInputs() ServiceInputs {
	return ServiceInputs{ImageRepository: w.Ref.Repository, ImageTag: w.Ref.Tag, ImageDigest: w.Ref.Digest, Values: w.Values}
}

// terraformInputs are what Terraform applies for a changed service: its desired inputs, or none
// when action removes it.
func (d *Desired) terraformInputs(name, action string) *ServiceInputs {
	w, ok := d.Want[name]
	if !ok || action == "removed" {
		return nil
	}
	in := w.TerraformInputs()
	return &in
}

// Desired is the environment as the run wants it.
type Desired struct {
	Want map[string]*Want // the run's services
	// Kept are the services the state holds that the run leaves out, with the inputs they were
	// last applied with: passed back as they are, so they stay exactly as they run.
	Kept  map[string]ServiceInputs
	Peers map[string]int // every service of the environment after the run, and its port
	Notes []string
}

// Names are the run's services, sorted.
func (d *Desired) Names() []string { return slices.Sorted(maps.Keys(d.Want)) }

// Live is what runs in the environment, read with a few list calls whatever the number of
// services: the newest revision of each release (from the labels of Helm's release Secrets,
// nothing decoded), each service's secret versions and each Deployment (which carries the
// fingerprint its release was applied with, the image and the secret version it runs).
type Live struct {
	Releases    map[string]release.Meta
	Secrets     map[string][]corev1.Secret
	Deployments map[string]appsv1.Deployment
	// ServiceFields are the managed fields of each Service, for the drift hints.
	ServiceFields map[string][]metav1.ManagedFieldsEntry
}

// observe reads what runs in the environment's namespace: four lists, at once.
func (r *Runner) observe(ctx context.Context) (Live, error) {
	live := Live{Deployments: map[string]appsv1.Deployment{}, ServiceFields: map[string][]metav1.ManagedFieldsEntry{}}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		live.Releases, err = release.Newest(ctx, r.kube, r.S.Namespace)
		return err
	})
	g.Go(func() (err error) {
		store := secrets.Store{Clients: r.clients, Namespace: r.S.Namespace, Env: r.S.Env}
		live.Secrets, err = store.All(ctx)
		return err
	})
	g.Go(func() error {
		list, err := r.clients.AppsV1().Deployments(r.S.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list the deployments of %s: %w", r.S.Namespace, err)
		}
		for _, d := range list.Items {
			live.Deployments[d.Name] = d
		}
		return nil
	})
	g.Go(func() error {
		list, err := r.clients.CoreV1().Services(r.S.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list the services of %s: %w", r.S.Namespace, err)
		}
		for _, s := range list.Items {
			live.ServiceFields[s.Name] = s.ManagedFields
		}
		return nil
	})
	return live, g.Wait()
}

// fingerprintKey is the value that records a release's fingerprint (set by deploy); the chart
// puts it on the Deployment as fingerprintAnnotation, and on nothing that rolls pods.
const (
	fingerprintKey        = "fingerprint"
	fingerprintAnnotation = "dtap.dev/fingerprint"
)

// runningFingerprint is the fingerprint the service's running release was applied with, ""
// when none.
func (l Live) runningFingerprint(service string) string {
	d := l.Deployments[service]
	return d.Annotations[fingerprintAnnotation]
}

// runningImage is the image the service's Deployment runs.
func (l Live) runningImage(service string) image.Ref {
	d, ok := l.Deployments[service]
	if !ok || len(d.Spec.Template.Spec.Containers) == 0 {
		return image.Ref{}
	}
	ref := d.Spec.Template.Spec.Containers[0].Image
	if repo, digest, ok := strings.Cut(ref, "@"); ok {
		return image.Ref{Repository: repo, Digest: digest}
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return image.Ref{Repository: ref[:i], Tag: ref[i+1:]}
	}
	return image.Ref{Repository: ref}
}

// runningSecret is the secret version of deploy's that the service's pods mount, "" for none
// (a Secret of the user's own, secret.existingSecret, is theirs to set).
func (l Live) runningSecret(service string) string {
	d := l.Deployments[service]
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && strings.HasPrefix(v.Secret.SecretName, service+"-secrets-") {
			return v.Secret.SecretName
		}
	}
	return ""
}

// inputsFingerprint is the fingerprint recorded in Terraform inputs (in deploy's own values
// document, the last), "" when none.
func inputsFingerprint(in ServiceInputs) string {
	if len(in.Values) == 0 {
		return ""
	}
	// Only its own top-level line is parsed, not the whole document (which lists every peer).
	for line := range strings.Lines(in.Values[len(in.Values)-1]) {
		if !strings.HasPrefix(line, fingerprintKey+":") {
			continue
		}
		var set map[string]any
		if err := yaml.Unmarshal([]byte(line), &set); err != nil {
			return ""
		}
		fp, _ := set[fingerprintKey].(string)
		return fp
	}
	return ""
}

// sources is what the desired state takes from the checkout alone: the inputs of every
// service the run builds (their content tags) and the chart's digest. Deploy and plan start
// reading them before they ask the cluster anything, and desire waits for them.
type sources struct {
	done        chan struct{}
	manifests   map[string]inputs.Manifest
	chartDigest string
	err         error
}

// readSources starts reading the run's sources, once.
func (r *Runner) readSources(ctx context.Context) *sources {
	if r.sources != nil {
		return r.sources
	}
	s, src := r.S, &sources{done: make(chan struct{})}
	r.sources = src
	go func() {
		defer close(src.done)
		var build []services.Service
		for _, svc := range s.Run {
			if _, pinned := s.Pins[svc.Name]; !pinned {
				build = append(build, svc)
			}
		}
		if src.manifests, src.err = inputs.OfAll(ctx, s.RepoRoot, build, image.InputOptions(ctx)); src.err != nil {
			return
		}
		src.chartDigest, src.err = chart.Digest(filepath.Join(s.RepoRoot, environments.ChartDir))
	}()
	return src
}

// desire decides what every service of the run should run. st and live may be empty (render,
// or a cluster that does not exist yet): then no secret version is mounted and nothing is kept.
// No image is looked up here; resolve does that for the services that need it.
func (r *Runner) desire(ctx context.Context, st State, live Live) (*Desired, error) {
	s := r.S
	d := &Desired{Want: map[string]*Want{}, Kept: map[string]ServiceInputs{}, Peers: map[string]int{}}
	if st.Exists {
		keep, err := r.kept(st, live)
		if err != nil {
			return nil, err
		}
		d.Kept = keep
	}
	src := r.readSources(ctx)
	<-src.done
	if src.err != nil {
		return nil, src.err
	}
	manifests, digest := src.manifests, src.chartDigest
	merged, err := s.mergedAll(s.Run)
	if err != nil {
		return nil, err
	}
	for name := range d.Kept {
		d.Peers[name] = 8080
		if svc, ok := s.Service(name); ok {
			if m, err := s.merged(svc); err == nil {
				d.Peers[name] = port(m)
			}
		}
	}
	for _, svc := range s.Run {
		d.Peers[svc.Name] = port(merged[svc.Name])
	}
	for _, svc := range s.Run {
		w := &Want{Service: svc, Merged: merged[svc.Name]}
		repo := s.ImageRepository(svc.Name)
		switch pin, pinned := s.Pins[svc.Name]; {
		case pinned:
			w.Pinned, w.Tag, w.Ref = true, pin.Tag, image.Ref{Repository: repo, Tag: pin.Tag, Digest: pin.Digest}
		case s.SkipBuild && s.ImageTag != "":
			w.Inputs, w.Tag = manifests[svc.Name], s.ImageTag
			w.Ref = image.Ref{Repository: repo, Tag: s.ImageTag}
		default:
			// The content tag names the image; IMAGE_TAG, when set, is added beside it in the
			// registry (a pipeline's pr-<number>) and the release runs it under that name.
			w.Inputs, w.Tag = manifests[svc.Name], manifests[svc.Name].Tag()
			w.Ref = image.Ref{Repository: repo, Tag: or(s.ImageTag, w.Tag)}
		}
		r.secretVersion(w, live, &d.Notes)
		d.Want[svc.Name] = w
	}
	if err := r.frontDoors(ctx, d); err != nil {
		return nil, err
	}
	if s.SkipBuild && s.ImageTag != "" {
		// IMAGE_TAG names an image built elsewhere: its digest, not its name, says which.
		if err := r.resolve(ctx, d, d.Names()); err != nil {
			return nil, err
		}
	}
	sets := map[string]map[string]any{}
	for _, name := range d.Names() {
		w := d.Want[name]
		sets[name] = s.overrides(w.Service, w.Merged, deploySet{chartDigest: digest, secret: w.Secret, peers: d.Peers, frontDoor: w.FrontDoor}, &d.Notes)
	}
	// Each service's documents are written and hashed on every core.
	if err := forEach(d.Names(), runtime.GOMAXPROCS(0), func(name string) error { return d.Want[name].seal(s, sets[name]) }); err != nil {
		return nil, err
	}
	return d, nil
}

// seal writes the service's values documents, deploy's own last, and its fingerprint: a digest
// of the image it runs and of every values document, recorded in deploy's document itself.
func (w *Want) seal(s Settings, set map[string]any) error {
	docs, err := s.serviceValues(w.Service, set)
	if err != nil {
		return err
	}
	h := sha256.New()
	fmt.Fprintf(h, "image\t%s\t%s\t%s\n", w.Ref.Repository, w.Tag, w.Ref.Tag)
	if w.Pinned || w.Tag == s.ImageTag {
		// Not a content tag: the digest is what says which image it is (resolve looked it up).
		fmt.Fprintf(h, "digest\t%s\n", w.Ref.Digest)
	}
	for _, doc := range docs {
		fmt.Fprintf(h, "values\t%d\n%s\n", len(doc), doc)
	}
	w.Fingerprint = hex.EncodeToString(h.Sum(nil))[:20]
	set[fingerprintKey] = w.Fingerprint
	// The fingerprint goes at the end of deploy's document rather than through a second
	// marshal: every service's document lists the environment's peers, so that would cost
	// fifty services' deploy the square of fifty again.
	docs[len(docs)-1] += fmt.Sprintf("%s: %q\n", fingerprintKey, w.Fingerprint)
	w.Values = docs
	return nil
}

// secretVersion decides the secret version a service mounts and what it holds. With no key of
// the service given or removed, it is the version the release mounts now. Otherwise it is the
// current version's data with the given keys set and the removed ones dropped (secrets.Merge:
// keys not named are carried over, never dropped by omission), in the version that holds
// exactly that: the current one, or a new one named as secrets.Choose names it. With no key
// left, the service mounts no version.
func (r *Runner) secretVersion(w *Want, live Live, notes *[]string) {
	name := w.Service.Name
	current := live.runningSecret(name)
	w.Secret = current
	given, remove := r.S.Secrets[name], r.S.SecretRemove[name]
	if len(given) == 0 && len(remove) == 0 {
		return
	}
	versions := live.Secrets[name]
	base, found := secrets.Data(versions, current)
	if current != "" && !found {
		*notes = append(*notes, fmt.Sprintf("%s mounts secret version %s, which is gone from %s: no key could be carried over, the next version holds the given keys only", name, current, r.S.Namespace))
	}
	w.secretData, w.SecretKeys = secrets.Merge(base, given, remove)
	if len(w.SecretKeys.Absent) > 0 {
		*notes = append(*notes, fmt.Sprintf("SECRET_REMOVE: %s's current secret version %s holds no key %s: nothing to remove there", name, or(current, "(none)"), strings.Join(w.SecretKeys.Absent, ", ")))
	}
	if len(w.secretData) == 0 {
		w.Secret, w.NewSecret = "", false
		return
	}
	w.Secret, w.NewSecret = secrets.Choose(name, versions, w.secretData, current)
}

// resolve looks the images of the named services up in their registries, several at once,
// and says which ones deploy builds. A pin and an image that is not a content tag are always
// looked up, as their digest is part of the fingerprint: desire calls it first for those.
func (r *Runner) resolve(ctx context.Context, d *Desired, names []string) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, name := range names {
		w := d.Want[name]
		if w.Pinned || w.Ref.Digest != "" {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			digest, err := image.Lookup(ctx, w.Ref.Repository, w.Tag)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && !r.S.SkipBuild:
				errs = append(errs, err)
			case err != nil:
				w.Missing = true
				fmt.Fprintf(r.Out, "  %s: %v; deploying %s:%s by tag, the cluster pulls it\n", name, err, w.Ref.Repository, w.Tag)
			case digest != "":
				w.Ref.Digest = digest
			case r.S.SkipBuild:
				w.Missing = true
				fmt.Fprintf(r.Out, "  %-10s %s:%s is not in the registry and SKIP_BUILD=true: deploying it by tag; the cluster's pull decides\n", name, w.Ref.Repository, w.Tag)
			default:
				w.Build = true
			}
		})
	}
	wg.Wait()
	return joinSorted(errs)
}

// Changes says what a deploy of d does to each service, by comparing fingerprints with what
// runs and with what the state recorded: installed, upgraded or removed; a service that is in
// neither map is unchanged, and costs nothing more.
func (d *Desired) Changes(st State, live Live, confirmRemove []string) map[string]string {
	out := map[string]string{}
	for name, w := range d.Want {
		rel, exists := live.Releases[name]
		switch {
		case !exists:
			out[name] = "installed"
		case live.runningFingerprint(name) != w.Fingerprint, rel.Status != helmrelease.StatusDeployed,
			!st.Managed[name], inputsFingerprint(st.Services[name]) != w.Fingerprint:
			out[name] = "upgraded"
		}
	}
	for name := range st.Managed {
		if _, want := d.Want[name]; !want {
			if _, keep := d.Kept[name]; !keep && slices.Contains(confirmRemove, name) {
				out[name] = "removed"
			}
		}
	}
	return out
}

// needsRefresh reports whether Terraform must read the service's release back before it plans:
// when the state holds it and it does not run what the state recorded (changed behind
// Terraform's back: a rollback, a failed run, a hand-made upgrade), or does not run at all.
// Otherwise deploy's own comparison has checked the release against the state with a few list
// calls, and Terraform plans from the state, reading nothing back.
func (d *Desired) needsRefresh(name string, st State, live Live) bool {
	if !st.Managed[name] {
		return false
	}
	rel, runs := live.Releases[name]
	return !runs || rel.Status != helmrelease.StatusDeployed || live.runningFingerprint(name) != inputsFingerprint(st.Services[name])
}

// mergedAll are the merged values of several services.
func (s Settings) mergedAll(svcs []services.Service) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for _, svc := range svcs {
		m, err := s.merged(svc)
		if err != nil {
			return nil, fmt.Errorf("values of %s: %w", svc.Name, err)
		}
		out[svc.Name] = m
	}
	return out, nil
}

func joinSorted(errs []error) error {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
