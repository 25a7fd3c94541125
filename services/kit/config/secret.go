package config

import "log/slog"

// Redacted is what every rendering of a secret value shows.
const Redacted = "[REDACTED]"

// Secret is a secret value. It renders as Redacted in fmt, JSON, text marshalling and slog,
// so it cannot leak through a log line or a response by accident. Reveal gives the value
// to the code that needs it.
type Secret string

// Reveal returns the secret value itself. Never log or return it.
func (s Secret) Reveal() string { return string(s) }

func (Secret) String() string               { return Redacted }
func (Secret) GoString() string             { return Redacted }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
func (Secret) LogValue() slog.Value         { return slog.StringValue(Redacted) }
