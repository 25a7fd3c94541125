package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dtap-platform/monorepo/internal/testfiles"
)

func TestCredentialKeysAreToldFromKeysThatNameOrDescribeOne(t *testing.T) {
	credentials := []string{"password", "dbPassword", "DB_PASSWORD", "db-password", "mysqlpassword", "passwd", "pwd", "bindpw", "psk",
		"passphrase", "pass", "db.pass", "secret", "clientSecret", "client_secret", "apiKey", "api-key", "API_KEY", "APIKey", "apikey",
		"privateKey", "private_key", "accessKey", "aws_access_key_id", "storageAccountKey", "tlsKey", "token", "authToken", "bearerToken",
		"githubToken", "oauth2Token", "credentials", "creds", "auth", "basicAuth", "authorization", "connectionString", "dsn", "jwt",
		"nginx.ingress.kubernetes.io/auth-password"}
	names := []string{"secretName", "existingSecret", "secretRef", "secretKeyRef", "passwordFile", "tokenUrl", "authUrl", "auth-url",
		"auth-signin", "authType", "tokenTtl", "passwordMinLength", "tokenAudience", "serviceAccount", "keyboard", "author", "bypass",
		"compass", "sortKey", "key", "publicKey", "monkey", "tokenizer", "secretary", "dtap-stage", "name", "value", "logLevel",
		"nginx.ingress.kubernetes.io/auth-secret", "nginx.ingress.kubernetes.io/auth-url", "nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream",
		"vault.hashicorp.com/agent-inject-secret-db", "secretStore", "passwordPolicy"}
	for _, k := range credentials {
		if !credentialKey(k) || referenceKey(k) {
			t.Errorf("%s does not read as a credential", k)
		}
	}
	for _, k := range names {
		if credentialKey(k) && !referenceKey(k) {
			t.Errorf("%s reads as a credential", k)
		}
	}
}

// The chart's defaults, the environments' files and the services' deploy descriptions of this
// repository hold no value under a key that reads as a credential: the check passes them, and
// the chart's values.yaml, which it does not read, holds none either.
func TestTheRepositorysValuesFilesHoldNoCredential(t *testing.T) {
	root := filepath.Join("..", "..")
	files := []string{filepath.Join(root, ".helm", "values.yaml")}
	for _, pattern := range []string{".helm/values-*.yaml", "services/*/values*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 7 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if found := credentialPaths(doc); len(found) > 0 {
			t.Errorf("%s: credentials at %v", f, found)
		}
	}
}

// Attacks: a credential put where values go, by the user (VALUES_FILES) or in the repository.
// Each is refused by Resolve, for deploy and for plan and render alike, naming the file, the
// key path and both fixes, never the value; Resolve writes nothing (resolve checks it).
func TestResolveRefusesACredentialInAValuesFile(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	dir := t.TempDir()
	const value = "S3cr3t-Value"
	files := map[string]string{
		"db.yaml":      "db:\n  password: " + value + "\n",
		"config.yaml":  "config:\n  db-password: " + value + "\n",
		"number.yaml":  "config:\n  api-token: 12345678\n",
		"env.yaml":     "extraEnv:\n  - name: APP_DB_PASSWORD\n    value: " + value + "\n",
		"block.yaml":   "db:\n  auth:\n    user: admin\n    pass: " + value + "\n",
		"list.yaml":    "tokens:\n  - " + value + "\n",
		"flow.json":    `{"config": {"apiKey": "` + value + `"}}`,
		"allowed.yaml": "config:\n  db-password: not-a-secret\n  api-token: neither\n",
	}
	testfiles.Write(t, dir, files)
	file := func(name string) string { return filepath.Join(dir, name) }
	fix := func(path, vars string) string {
		return path + " looks like a credential, and a values file is copied into Terraform's plan and state, the Helm release and the pod spec: give it as " +
			vars + " (deploy writes it into a Secret), or, if it is not a credential, ALLOW_PLAINTEXT_VALUES=" + path
	}
	tests := []struct {
		name    string
		purpose Purpose
		vars    map[string]string
		want    []string
	}{
		{"a password in VALUES_FILES, for deploy", ForDeploy, map[string]string{"VALUES_FILES": file("db.yaml")},
			[]string{"VALUES_FILES " + file("db.yaml") + ": " + fix("db.password", "SECRET_API_DB_PASSWORD or SECRET_API_GW_DB_PASSWORD")}},
		{"the same for plan (and render)", ForPlan, map[string]string{"VALUES_FILES": file("db.yaml")},
			[]string{fix("db.password", "SECRET_API_DB_PASSWORD or SECRET_API_GW_DB_PASSWORD")}},
		{"a run of one service names its variable only", ForDeploy, map[string]string{"VALUES_FILES": file("db.yaml"), "SERVICES": "api"},
			[]string{fix("db.password", "SECRET_API_DB_PASSWORD")}},
		{"a config file named like a credential", ForDeploy, map[string]string{"VALUES_FILES": file("config.yaml")},
			[]string{fix("config.db-password", "SECRET_API_DB_PASSWORD or SECRET_API_GW_DB_PASSWORD")}},
		{"a numeric token", ForDeploy, map[string]string{"VALUES_FILES": file("number.yaml"), "SERVICES": "api"},
			[]string{fix("config.api-token", "SECRET_API_API_TOKEN")}},
		{"an environment variable by name and value", ForDeploy, map[string]string{"VALUES_FILES": file("env.yaml"), "SERVICES": "api"},
			[]string{fix("extraEnv.APP_DB_PASSWORD", "SECRET_API_APP_DB_PASSWORD")}},
		{"every key of a credential's block", ForDeploy, map[string]string{"VALUES_FILES": file("block.yaml"), "SERVICES": "api"},
			[]string{fix("db.auth.pass", "SECRET_API_DB_AUTH_PASS"), fix("db.auth.user", "SECRET_API_DB_AUTH_USER")}},
		{"a list of tokens", ForDeploy, map[string]string{"VALUES_FILES": file("list.yaml"), "SERVICES": "api"},
			[]string{fix("tokens", "SECRET_API_TOKENS")}},
		{"JSON is YAML too", ForDeploy, map[string]string{"VALUES_FILES": file("flow.json"), "SERVICES": "api"},
			[]string{fix("config.apiKey", "SECRET_API_APIKEY")}},
		{"an allowance for another key lets nothing through", ForDeploy,
			map[string]string{"VALUES_FILES": file("allowed.yaml"), "SERVICES": "api", "ALLOW_PLAINTEXT_VALUES": "config.db-password"},
			[]string{fix("config.api-token", "SECRET_API_API_TOKEN")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(t, root, "dev", tt.purpose, tt.vars)
			wantError(t, err, tt.want, value)
			if err != nil && strings.Contains(err.Error(), "not-a-secret") {
				t.Errorf("an allowed value was printed: %v", err)
			}
		})
	}

	t.Run("destroy reads no values file", func(t *testing.T) {
		if _, err := resolve(t, root, "dev", ForDestroy, map[string]string{"VALUES_FILES": file("db.yaml")}); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
}

func TestResolveRefusesACredentialInTheRepositorysValuesFiles(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	const value = "S3cr3t-Value"
	testfiles.Write(t, root, map[string]string{"services/api-gw/values.yaml": "config:\n  token: " + value + "\n"})
	_, err := resolve(t, root, "dev", ForDeploy, nil)
	wantError(t, err, []string{"services/api-gw/values.yaml: config.token looks like a credential", "give it as SECRET_API_GW_TOKEN (deploy", "ALLOW_PLAINTEXT_VALUES=config.token"}, value)
	if err != nil && strings.Contains(err.Error(), "SECRET_API_TOKEN") {
		t.Errorf("api, which does not read api-gw's file, is named: %v", err)
	}

	env := filepath.Join(root, ".helm", "values-test.yaml")
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env, append(b, []byte("\nextraEnv:\n  - name: APP_API_KEY\n    value: "+value+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = resolve(t, root, "test", ForPlan, map[string]string{"SERVICES": "api"})
	wantError(t, err, []string{".helm/values-test.yaml: extraEnv.APP_API_KEY looks like a credential", "SECRET_API_APP_API_KEY"}, value)
}

// What the chart itself uses, and what names or describes a credential, passes; and
// ALLOW_PLAINTEXT_VALUES lets a key, or everything under a key, through.
func TestResolveLetsReferencesAndAllowedKeysThrough(t *testing.T) {
	isolate(t)
	root := fakeRepo(t)
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{
		"refs.yaml": `secret:
  existingSecret: api-own
imagePullSecrets:
  - name: registry-credentials
ingress:
  annotations:
    nginx.ingress.kubernetes.io/auth-secret: basic-auth
    nginx.ingress.kubernetes.io/auth-url: https://auth.example.com/oauth2/auth
  tls:
    secretName: api-tls
externalSecret:
  enabled: true
  secretStoreRef:
    name: aws
  data:
    - secretKey: db-password
      remoteRef:
        key: prod/api/db
        property: password
serviceAccount:
  automountServiceAccountToken: false
extraEnv:
  - name: APP_DB_PASSWORD
    valueFrom:
      secretKeyRef:
        name: db
        key: password
  - name: APP_TOKEN_URL
    value: https://auth.example.com/token
config:
  dtap-stage: development
  db-password: ""
  token-issuer: https://auth.example.com
  password-policy: at least 12 characters
`,
		"allowed.yaml": "config:\n  db-password: not-a-secret\n  api-token: neither\n",
	})
	for _, tt := range []struct {
		name string
		vars map[string]string
	}{
		{"the chart's references to Secrets and secret stores", map[string]string{"VALUES_FILES": filepath.Join(dir, "refs.yaml"), "SERVICES": "api"}},
		{"each key allowed by its path", map[string]string{"VALUES_FILES": filepath.Join(dir, "allowed.yaml"), "ALLOW_PLAINTEXT_VALUES": "config.db-password, config.api-token"}},
		{"every key under an allowed one", map[string]string{"VALUES_FILES": filepath.Join(dir, "allowed.yaml"), "ALLOW_PLAINTEXT_VALUES": "config"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := resolve(t, root, "dev", ForPlan, tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Merged) == 0 {
				t.Error("the values were not merged")
			}
		})
	}
}

func TestSecretKeyOfPath(t *testing.T) {
	for path, want := range map[string]string{
		"db.password":                              "db-password",
		"config.db-password":                       "db-password",
		"extraEnv.APP_DB_PASSWORD":                 "app-db-password",
		"config.apiKey":                            "apikey",
		"podAnnotations.example.com/auth-password": "podannotations-example-com-auth-password",
	} {
		if got := secretKeyOfPath(strings.Split(path, ".")); got != want {
			t.Errorf("secretKeyOfPath(%s) = %q, want %q", path, got, want)
		}
	}
}
