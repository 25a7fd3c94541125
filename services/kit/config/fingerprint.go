package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Fingerprints: what the fingerprints view shows of a value that is not public.
//
// Threat model. /config answers whoever reaches the service, and in staging and prod that is
// the public front door. Of a value under a key that is not public, a reader must learn its
// length and whether it equals another value (the same value shows the same fingerprint in
// every pod, revision and environment that shares the scheme), and nothing that helps to guess
// it. A fingerprint is 96 bits, so two different values collide with a chance of 2^-96.
//
//   - Keyed (the sound case): the Secret mounted at SECRETS_DIR holds a file named
//     config-fingerprint-key (with mage deploy: SECRET_<SERVICE>_CONFIG_FINGERPRINT_KEY, 16 bytes
//     or more, random). The fingerprint is HMAC-SHA256 under that key. Every pod of a release
//     mounts the same Secret, so they agree; set the same key in several environments to compare
//     them. A reader does not have the key, and /config never shows it (it is a secret, shown as a
//     fingerprint of itself), so a fingerprint is useless for testing a guess, however few
//     values are possible (a PIN, "true").
//   - Unkeyed (no key mounted): the pods of a release share nothing that a reader lacks (the
//     namespace, the release, the image and the chart are all public), so no keyed hash is
//     possible without a shared secret. The fingerprint is then argon2id (3 passes over 8 MiB,
//     one lane), salted with the release name, which is the service's name in every environment.
//     A guess costs a reader what one fingerprint costs the pod (about 15 ms and 8 MiB on a
//     core; far less on a GPU farm). That makes guessing a strong value hopeless and a password
//     slow, but it cannot protect a low-entropy value (a PIN, a port, "true"): a reader tries
//     them all. Mount a key wherever such values sit under keys that are not public. At most
//     MaxSlowFingerprints distinct values get an unkeyed fingerprint, so that the cost at start
//     stays bounded (a few seconds); the others show their length only.
const (
	// FingerprintKeyName is the file of SECRETS_DIR that keys the fingerprints.
	FingerprintKeyName = "config-fingerprint-key"
	// MinFingerprintKeyLength is the shortest key Load accepts.
	MinFingerprintKeyLength = 16
	// MaxSlowFingerprints is how many distinct values get an unkeyed (argon2id) fingerprint.
	MaxSlowFingerprints = 256

	fingerprintDomain = "dtap-kit config fingerprint v1\x00"
	fingerprintBytes  = 12
	argonTime         = 3
	argonMemoryKiB    = 8 << 10
)

// maxSlowFingerprints is MaxSlowFingerprints; tests lower it.
var maxSlowFingerprints = MaxSlowFingerprints

// Fingerprinter makes the fingerprints of values: keyed (HMAC-SHA256) when it has a key,
// else argon2id salted with the release. Its zero value is unkeyed, with no release.
type Fingerprinter struct {
	key  []byte
	salt []byte
}

// NewFingerprinter is a keyed Fingerprinter when key is not empty, else an unkeyed one salted
// with release.
func NewFingerprinter(key []byte, release string) Fingerprinter {
	f := Fingerprinter{salt: []byte(fingerprintDomain + release)}
	if len(key) > 0 {
		f.key = append([]byte(nil), key...)
	}
	return f
}

// Keyed reports whether the fingerprints are keyed by a secret.
func (f Fingerprinter) Keyed() bool { return len(f.key) > 0 }

// Scheme says how the fingerprints are made, as /config shows it.
func (f Fingerprinter) Scheme() string {
	if f.Keyed() {
		return "hmac-sha256 keyed by " + FingerprintKeyName + " (96 bits)"
	}
	return "argon2id t=3 m=8MiB salted with the release (96 bits): unkeyed, set " + FingerprintKeyName + " in the Secret"
}

// Sum is the fingerprint of one value: "hmac:" or "argon2id:" and 24 hex digits. Unkeyed, it
// costs an argon2id derivation.
func (f Fingerprinter) Sum(value []byte) string {
	if f.Keyed() {
		mac := hmac.New(sha256.New, f.key)
		mac.Write([]byte(fingerprintDomain))
		mac.Write(value)
		return "hmac:" + hex.EncodeToString(mac.Sum(nil)[:fingerprintBytes])
	}
	salt := f.salt
	if len(salt) == 0 {
		salt = []byte(fingerprintDomain)
	}
	return "argon2id:" + hex.EncodeToString(argon2.IDKey(value, salt, argonTime, argonMemoryKiB, 1, fingerprintBytes))
}

// Show is what the fingerprints view shows for a value with fingerprint sum ("" when it has
// none) and length n.
func Show(sum string, n int) string {
	if sum == "" {
		return "[hidden, " + strconv.Itoa(n) + " bytes: no fingerprint key, and more than " + strconv.Itoa(maxSlowFingerprints) + " values]"
	}
	return "[fingerprint " + sum + ", " + strconv.Itoa(n) + " bytes]"
}

// Fingerprints is what the fingerprints view shows of each value, in order. Equal values are
// fingerprinted once. Unkeyed, at most MaxSlowFingerprints distinct values get a fingerprint,
// the first ones in order, and the derivations run on up to 4 cores.
func (f Fingerprinter) Fingerprints(values [][]byte) []string {
	type job struct {
		value []byte
		sum   string
	}
	index := map[[32]byte]int{}
	var jobs []*job
	which := make([]int, len(values))
	for i, v := range values {
		h := sha256.Sum256(v)
		j, ok := index[h]
		if !ok {
			j = len(jobs)
			index[h] = j
			jobs = append(jobs, &job{value: v})
		}
		which[i] = j
	}
	todo := jobs
	if !f.Keyed() && len(todo) > maxSlowFingerprints {
		todo = todo[:maxSlowFingerprints]
	}
	workers := 1
	if !f.Keyed() {
		workers = min(runtime.GOMAXPROCS(0), 4, len(todo))
	}
	next := make(chan *job)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range next {
				j.sum = f.Sum(j.value)
			}
		})
	}
	for _, j := range todo {
		next <- j
	}
	close(next)
	wg.Wait()
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = Show(jobs[which[i]].sum, len(v))
	}
	return out
}
