package deploy

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/dtap-platform/monorepo/internal/secrets"
	"github.com/dtap-platform/monorepo/internal/services"
	"github.com/dtap-platform/monorepo/internal/testfiles"
)

func TestResolveReadsSecretRemove(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	tests := []struct {
		name    string
		vars    map[string]string
		environ []string
		want    map[string][]string
	}{
		{"a key as the Secret holds it", map[string]string{"SECRET_REMOVE": "api:db-password"}, nil,
			map[string][]string{"api": {"db-password"}}},
		{"a key as its variable ends, two services, spaces and a repeat", map[string]string{"SECRET_REMOVE": " api:DB_PASSWORD , api-gw:token,api:db-password"}, nil,
			map[string][]string{"api": {"db-password"}, "api-gw": {"token"}}},
		{"a removal beside another key given", map[string]string{"SECRET_REMOVE": "api:db-password"}, []string{"SECRET_API_API_TOKEN=tok"},
			map[string][]string{"api": {"db-password"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// SECRET_REMOVE is in the process environment too, as a user sets it: it is no
			// service's secret.
			environ := append(slices.Clone(tt.environ), "SECRET_REMOVE="+tt.vars["SECRET_REMOVE"])
			s, err := resolve(t, root, "dev", ForDeploy, tt.vars, environ...)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(s.SecretRemove, tt.want, slices.Equal) {
				t.Errorf("SecretRemove = %v, want %v", s.SecretRemove, tt.want)
			}
			if _, ok := s.Secrets["remove"]; ok || len(s.Secrets) > 1 {
				t.Errorf("SECRET_REMOVE was read as a secret: %v", s.SecretKeys("remove"))
			}
		})
	}
}

func TestResolveRefusesBadSecretRemovalsBeforeAnything(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	testfiles.Write(t, root, map[string]string{"services/api-gw/values.yaml": "secret:\n  existingSecret: gw-own\n"})
	const value = "Value-0f-The-Secret"
	tests := []struct {
		name    string
		vars    map[string]string
		environ []string
		want    []string
	}{
		{"a key without its service", map[string]string{"SECRET_REMOVE": "db-password"}, nil,
			[]string{`SECRET_REMOVE: "db-password" is not <service>:<key>; list the keys to remove as, for example, SECRET_REMOVE=api:db-password`}},
		{"a service without a key", map[string]string{"SECRET_REMOVE": "api:"}, nil, []string{`"api:" is not <service>:<key>`}},
		{"a service that is not one", map[string]string{"SECRET_REMOVE": "db:password"}, nil,
			[]string{`SECRET_REMOVE: "db:password" names no service: use one of api, api-gw`}},
		{"a key of a service the run leaves out", map[string]string{"SECRET_REMOVE": "api:db-password", "SERVICES": "api-gw"}, nil,
			[]string{`"api:db-password" removes a key of api, which this run leaves out (SERVICES): add api to SERVICES, or drop the entry`}},
		{"a key that is no Secret key", map[string]string{"SECRET_REMOVE": "api:a/b"}, nil, []string{`"a/b" is not a valid Secret key`}},
		{"removing a key that is also given", map[string]string{"SECRET_REMOVE": "api:db-password"}, []string{"SECRET_API_DB_PASSWORD=" + value},
			[]string{"SECRET_REMOVE removes api's key db-password, and SECRET_API_DB_PASSWORD gives it: keep one"}},
		{"removing a key of a service that mounts a Secret of its own", map[string]string{"SECRET_REMOVE": "api-gw:token"}, nil,
			[]string{`SECRET_API_GW_* (or SECRET_REMOVE) are set, but api-gw's values in dev mount the Secret "gw-own" of their own (secret.existingSecret): choose one`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(t, root, "dev", ForDeploy, tt.vars, tt.environ...)
			wantError(t, err, tt.want, value)
		})
	}
}

// mounting is a Deployment whose pods mount the secret version secret.
func mounting(name, secret string) appsv1.Deployment {
	return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "secrets", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}}}}}
}

const secretsNS = "dtap-dev"

// liveWithSecrets is a namespace where api mounts api-secrets-1 (db-password and api-token),
// beside status's own version and a Secret deploy did not write; and the Live that reads it.
func liveWithSecrets(t *testing.T) (*fake.Clientset, Live) {
	t.Helper()
	cs := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls-cert", Namespace: secretsNS}, Data: map[string][]byte{"tls.key": []byte("k")}})
	store := secrets.Store{Clients: cs, Namespace: secretsNS, Env: "dev"}
	for svc, data := range map[string]map[string][]byte{
		"api":    {"db-password": []byte("db-S3cr3t"), "api-token": []byte("tok-1")},
		"status": {"token": []byte("status-S3cr3t")},
	} {
		if _, _, err := store.Apply(t.Context(), svc, data, ""); err != nil {
			t.Fatal(err)
		}
	}
	all, err := store.All(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cs, Live{Secrets: all, Deployments: map[string]appsv1.Deployment{
		"api": mounting("api", "api-secrets-1"), "status": mounting("status", "status-secrets-1")}}
}

// secretsOf lists every Secret of the namespace with its data, to show what changed.
func secretsOf(t *testing.T, cs *fake.Clientset) map[string]map[string][]byte {
	t.Helper()
	list, err := cs.CoreV1().Secrets(secretsNS).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]byte{}
	for _, s := range list.Items {
		out[s.Name] = s.Data
	}
	return out
}

func sameData(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, bytes.Equal) }

// The desired state of api's secret under what a user gives: the version it mounts, what that
// holds, and what the run says about its keys.
func TestTheDesiredSecretCarriesOverTheKeysNotGiven(t *testing.T) {
	dbPassword := []byte("db-S3cr3t")
	tests := []struct {
		name      string
		given     map[string][]byte
		remove    []string
		running   string // the version api's pods mount
		version   string
		create    bool
		data      map[string][]byte
		keys      string
		noteAbout string
	}{
		{"nothing given: the version it mounts", nil, nil, "api-secrets-1", "api-secrets-1", false, nil, "no keys", ""},
		{"only the token rotated: db-password is carried over", map[string][]byte{"api-token": []byte("tok-2")}, nil, "api-secrets-1",
			"api-secrets-2", true, map[string][]byte{"db-password": dbPassword, "api-token": []byte("tok-2")}, "changed api-token; kept db-password", ""},
		{"the same token again: no new version", map[string][]byte{"api-token": []byte("tok-1")}, nil, "api-secrets-1",
			"api-secrets-1", false, map[string][]byte{"db-password": dbPassword, "api-token": []byte("tok-1")}, "kept api-token, db-password", ""},
		{"db-password removed explicitly", nil, []string{"db-password"}, "api-secrets-1",
			"api-secrets-2", true, map[string][]byte{"api-token": []byte("tok-1")}, "removed db-password; kept api-token", ""},
		{"every key removed: no version mounted", nil, []string{"db-password", "api-token"}, "api-secrets-1",
			"", false, map[string][]byte{}, "removed api-token, db-password", ""},
		{"a key to remove that is not there is said", nil, []string{"db-pasword"}, "api-secrets-1",
			"api-secrets-1", false, map[string][]byte{"db-password": dbPassword, "api-token": []byte("tok-1")},
			"kept api-token, db-password; not held, nothing to remove: db-pasword", "holds no key db-pasword"},
		{"a first deploy holds what is given", map[string][]byte{"api-token": []byte("tok-2")}, nil, "",
			"api-secrets-2", true, map[string][]byte{"api-token": []byte("tok-2")}, "added api-token", ""},
		{"the mounted version is gone: said, and the given keys only", map[string][]byte{"api-token": []byte("tok-2")}, nil, "api-secrets-7",
			"api-secrets-2", true, map[string][]byte{"api-token": []byte("tok-2")}, "added api-token", "api-secrets-7, which is gone from dtap-dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, live := liveWithSecrets(t)
			if tt.running == "" {
				delete(live.Deployments, "api")
			} else {
				live.Deployments["api"] = mounting("api", tt.running)
			}
			before := maps.Clone(live.Secrets["api"][0].Data)
			s := Settings{Namespace: secretsNS, Env: "dev", Secrets: map[string]map[string][]byte{}, SecretRemove: map[string][]string{}}
			if tt.given != nil {
				s.Secrets["api"] = tt.given
			}
			if tt.remove != nil {
				s.SecretRemove["api"] = tt.remove
			}
			var notes []string
			w := &Want{Service: services.Service{Name: "api"}}
			NewRunner(s, &bytes.Buffer{}, "test").secretVersion(w, live, &notes)
			if w.Secret != tt.version || w.NewSecret != tt.create {
				t.Errorf("version = %q, new %v; want %q, new %v", w.Secret, w.NewSecret, tt.version, tt.create)
			}
			if tt.data != nil && !sameData(w.secretData, tt.data) {
				t.Errorf("data holds keys %v, want %v", slices.Sorted(maps.Keys(w.secretData)), slices.Sorted(maps.Keys(tt.data)))
			}
			if got := w.SecretKeys.String(); got != tt.keys {
				t.Errorf("keys = %q, want %q", got, tt.keys)
			}
			if joined := strings.Join(notes, "\n"); (tt.noteAbout == "") != (joined == "") || !strings.Contains(joined, tt.noteAbout) {
				t.Errorf("notes = %q, want one about %q", joined, tt.noteAbout)
			}
			if !sameData(live.Secrets["api"][0].Data, before) {
				t.Error("the current version's data was changed in memory")
			}
		})
	}
}

// The attack of issue 22, through deploy's own step: a run that gives only SECRET_API_API_TOKEN
// writes a version that still holds db-password, byte for byte, says which keys were kept and
// changed (never a value), and touches no other Secret. Plan, from the same desired state,
// names the same version.
func TestAPartialSecretDeployKeepsTheOtherKeys(t *testing.T) {
	cs, live := liveWithSecrets(t)
	before := secretsOf(t, cs)
	s := Settings{Namespace: secretsNS, Env: "dev", Secrets: map[string]map[string][]byte{"api": {"api-token": []byte("tok-2")}}}
	var out bytes.Buffer
	r := NewRunner(s, &out, "test")
	r.clients = cs
	d := &Desired{Want: map[string]*Want{"api": {Service: services.Service{Name: "api"}}, "status": {Service: services.Service{Name: "status"}}}}
	for _, name := range d.Names() {
		r.secretVersion(d.Want[name], live, &d.Notes)
	}
	planned := &Want{Service: services.Service{Name: "api"}}
	NewRunner(s, &bytes.Buffer{}, "plan").secretVersion(planned, live, &d.Notes)
	if planned.Secret != d.Want["api"].Secret {
		t.Errorf("plan names %s, deploy %s", planned.Secret, d.Want["api"].Secret)
	}

	if err := r.writeSecrets(t.Context(), d, map[string]string{"api": "upgraded", "status": "upgraded"}); err != nil {
		t.Fatal(err)
	}
	after := secretsOf(t, cs)
	want := map[string][]byte{"db-password": []byte("db-S3cr3t"), "api-token": []byte("tok-2")}
	if !sameData(after["api-secrets-2"], want) {
		t.Errorf("api-secrets-2 holds keys %v, want db-password kept and api-token changed", slices.Sorted(maps.Keys(after["api-secrets-2"])))
	}
	delete(after, "api-secrets-2")
	if !maps.EqualFunc(before, after, sameData) {
		t.Errorf("other Secrets changed: before %v, after %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
	if r.wrote["api"] != "api-secrets-2" || len(r.wrote) != 1 {
		t.Errorf("wrote = %v, want api's new version only", r.wrote)
	}
	printed := out.String()
	if !strings.Contains(printed, "api        secret keys changed api-token; kept db-password: new version api-secrets-2") {
		t.Errorf("the output does not list the keys:\n%s", printed)
	}
	for _, v := range []string{"db-S3cr3t", "tok-1", "tok-2", "status-S3cr3t"} {
		if strings.Contains(printed, v) {
			t.Errorf("the output holds a secret value %q:\n%s", v, printed)
		}
	}
	if strings.Contains(printed, "status") {
		t.Errorf("status, given no key, was written or named:\n%s", printed)
	}
}
