package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverRendersItsValue(t *testing.T) {
	const value = "correct-horse-battery-staple"
	s := Secret(value)

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "secret", s, "secrets", map[string]Secret{"k": s})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "secret", s)
	js, err := json.Marshal(map[string]any{"s": s, "list": []Secret{s}})
	if err != nil {
		t.Fatal(err)
	}
	renderings := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%#v": fmt.Sprintf("%#v", s),
		"%q": fmt.Sprintf("%q", s), "struct %+v": fmt.Sprintf("%+v", struct{ S Secret }{s}),
		"json": string(js), "slog": logs.String(),
	}
	for how, out := range renderings {
		if strings.Contains(out, value) {
			t.Errorf("%s rendering leaks the value: %s", how, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s rendering lacks %s: %s", how, Redacted, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}
