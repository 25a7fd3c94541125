package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// remoteOptions authenticate as the docker CLI does (~/.docker/config.json and its credential
// helpers). A registry on localhost or 127.0.0.1 is spoken to over plain HTTP.
func remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

func parseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	return r, nil
}

// Lookup asks the registry for repository:tag. It returns the digest when the tag exists, ""
// when the registry answers that it does not, and an error when the registry cannot be asked.
func Lookup(ctx context.Context, repository, tag string) (string, error) {
	ref, err := parseRef(repository + ":" + tag)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(ref, remoteOptions(ctx)...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound) {
			return "", nil
		}
		return "", fmt.Errorf("look up %s in its registry: %w", ref, err)
	}
	return desc.Digest.String(), nil
}

// Publish pushes the local image spec.Ref to repository:tag with reproducible bytes: every
// timestamp (layer files, config, history) is the revision's commit time, and what the engine
// stamps of its own (its version, the build container's id) is left out. The same inputs
// therefore give the same digest on any machine with the same builder image. It returns the
// digest.
func Publish(ctx context.Context, spec Spec, repository string) (string, error) {
	ref, err := parseRef(repository + ":" + spec.Ref.Tag)
	if err != nil {
		return "", err
	}
	img, cleanup, err := savedImage(ctx, spec.Ref.Repository+":"+spec.Ref.Tag)
	if err != nil {
		return "", err
	}
	defer cleanup()
	img, err = Normalize(img, spec.Created())
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remoteOptions(ctx)...); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return digest.String(), nil
}

// Normalize sets every timestamp of img to t and drops what the engine stamps of itself.
func Normalize(img v1.Image, t time.Time) (v1.Image, error) {
	img, err := mutate.Time(img, t)
	if err != nil {
		return nil, fmt.Errorf("normalise image times: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Container, cfg.DockerVersion = "", ""
	cfg.Config.Hostname, cfg.Config.Image = "", ""
	return mutate.ConfigFile(img, cfg)
}

// savedImage reads a local image through `docker save` into a temporary file, removed by
// cleanup. (docker save is what every engine version has; no engine API client is linked.)
func savedImage(ctx context.Context, local string) (v1.Image, func(), error) {
	f, err := os.CreateTemp("", "image-*.tar")
	if err != nil {
		return nil, nil, err
	}
	path := f.Name()
	f.Close()
	cleanup := func() { os.Remove(path) }
	if err := Docker(ctx, nil, "save", "-o", path, local); err != nil {
		cleanup()
		return nil, nil, err
	}
	tag, err := name.NewTag(local, name.StrictValidation)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("read the saved image %s: %w", local, err)
	}
	return img, cleanup, nil
}

// Copy makes the image pin available as repository:<its tag> and returns that reference with
// the same digest. Within one registry nothing moves; across registries the image is copied by
// digest, so the bytes stay exactly those that were tested.
func Copy(ctx context.Context, pin Ref, repository string) (Ref, error) {
	out := Ref{Repository: repository, Tag: pin.Tag, Digest: pin.Digest}
	if pin.Repository == repository || pin.Digest == "" {
		return Ref{Repository: pin.Repository, Tag: pin.Tag, Digest: pin.Digest}, nil
	}
	src, err := parseRef(pin.Repository + "@" + pin.Digest)
	if err != nil {
		return out, err
	}
	dst, err := parseRef(repository + ":" + pin.Tag)
	if err != nil {
		return out, err
	}
	desc, err := remote.Get(src, remoteOptions(ctx)...)
	if err != nil {
		return out, fmt.Errorf("read %s to promote it: %w", src, err)
	}
	img, err := desc.Image()
	if err != nil {
		return out, err
	}
	if err := remote.Write(dst, img, remoteOptions(ctx)...); err != nil {
		return out, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out, nil
}

// Tag gives the image ref (by digest) one more tag in its registry.
func Tag(ctx context.Context, ref Ref, tag string) error {
	src, err := parseRef(ref.Repository + "@" + ref.Digest)
	if err != nil {
		return err
	}
	dst, err := name.NewTag(ref.Repository+":"+tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	desc, err := remote.Get(src, remoteOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("read %s to tag it %s: %w", src, tag, err)
	}
	if err := remote.Tag(dst, desc, remoteOptions(ctx)...); err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	return nil
}
