package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dtap-platform/monorepo/internal/services"
)

// SecretRemoveVar names the secret keys a deploy removes. A deploy carries every key of a
// service it is not given over from the version the release mounts, so dropping one must be
// said: SECRET_REMOVE=api:db-password,status:token.
const SecretRemoveVar = "SECRET_REMOVE"

// readSecretRemovals reads SECRET_REMOVE=<service>:<key>[,<service>:<key>...], by service. A
// key is written as the Secret holds it (db-password) or as its variable ends (DB_PASSWORD).
// Refused, naming the fix: an entry that is not <service>:<key>, a service that is not one or
// that the run leaves out (its keys would stay), and a key the run also gives (which of the
// two is meant?).
func readSecretRemovals(all, run []services.Service, given map[string]map[string][]byte, v string) (map[string][]string, error) {
	out := map[string][]string{}
	var errs []error
	for _, entry := range splitList(v) {
		name, raw, ok := strings.Cut(entry, ":")
		name, raw = strings.TrimSpace(name), strings.TrimSpace(raw)
		key := secretKeyName(raw)
		svc, known := findService(all, name)
		switch {
		case !ok || name == "" || raw == "":
			errs = append(errs, fmt.Errorf("%s: %q is not <service>:<key>; list the keys to remove as, for example, %s=%s:db-password", SecretRemoveVar, entry, SecretRemoveVar, all[0].Name))
		case !known:
			errs = append(errs, fmt.Errorf("%s: %q names no service: use one of %s", SecretRemoveVar, entry, strings.Join(services.Names(all), ", ")))
		case !slices.ContainsFunc(run, func(s services.Service) bool { return s.Name == svc.Name }):
			errs = append(errs, fmt.Errorf("%s: %q removes a key of %s, which this run leaves out (SERVICES): add %s to SERVICES, or drop the entry", SecretRemoveVar, entry, svc.Name, svc.Name))
		case !secretKey.MatchString(key) || len(key) > 253 || key == "." || key == "..":
			errs = append(errs, fmt.Errorf("%s: %q: %q is not a valid Secret key: use letters, digits, '-', '_' and '.'", SecretRemoveVar, entry, key))
		case hasKey(given[svc.Name], key):
			errs = append(errs, fmt.Errorf("%s removes %s's key %s, and %s gives it: keep one (unset the variable to remove the key, or drop the entry to set it)",
				SecretRemoveVar, svc.Name, key, secretVar(svc.Name, key)))
		case !slices.Contains(out[svc.Name], key):
			out[svc.Name] = append(out[svc.Name], key)
		}
	}
	return out, errors.Join(errs...)
}

// secretKeyName is the Secret key a variable's suffix names: lower case, '-' for '_'.
func secretKeyName(suffix string) string {
	return strings.ToLower(strings.ReplaceAll(suffix, "_", "-"))
}

// secretVar is the variable that gives a service's key: SECRET_API_DB_PASSWORD for api's
// db-password.
func secretVar(service, key string) string {
	return "SECRET_" + services.EnvToken(service) + "_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

func hasKey(data map[string][]byte, key string) bool {
	_, ok := data[key]
	return ok
}

func findService(all []services.Service, name string) (services.Service, bool) {
	i := slices.IndexFunc(all, func(s services.Service) bool { return s.Name == name })
	if i < 0 {
		return services.Service{}, false
	}
	return all[i], true
}

// secretsTouched reports whether the run gives or removes a key of the service: only then is
// a secret version written or pruned.
func (s Settings) secretsTouched(service string) bool {
	return len(s.Secrets[service]) > 0 || len(s.SecretRemove[service]) > 0
}
