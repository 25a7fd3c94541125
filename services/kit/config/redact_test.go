package config

import (
	"strings"
	"testing"
)

func TestLooksSecretKnowsTheCommonCredentialVocabularies(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		// The names of the issue that the first list missed.
		{"APP_DB_PASS", true},
		{"APP_DATABASE_DSN", true},
		{"APP_DB_PWD", true},
		{"APP_PROXY_AUTH", true},
		{"APP_BEARER", true},
		{"APP_SERVICE_JWT", true},
		{"APP_ENCRYPTION_KEY", true},
		{"APP_SESSION_KEY", true},
		{"APP_TLS_KEY", true},
		{"APP_SSH_KEY", true},
		{"APP_AWS_ACCESS_KEY", true},
		{"APP_WEBHOOK_HMAC", true},
		{"APP_PASSWORD_SALT", true},
		{"APP_GPG_PASSPHRASE", true},
		{"APP_SMTP_CREDS", true},
		{"APP_OTP_SEED", true},
		// The first list, still redacted.
		{"APP_DB_PASSWORD", true},
		{"APP_LDAP_PASSWD", true},
		{"APP_CLIENT_SECRET", true},
		{"APP_GITHUB_TOKEN", true},
		{"APP_APIKEY", true},
		{"APP_API_KEY", true},
		{"APP_PRIVATE_KEY", true},
		{"APP_GCP_CREDENTIALS", true},
		// Hooks, compact spellings, other vocabularies.
		{"APP_SLACK_WEBHOOK_URL", true},
		{"APP_DEPLOY_HOOK", true},
		{"APP_KEY", true},
		{"APP_SIGNING_KEY", true},
		{"APP_AWS_ACCESS_KEY_ID", true},
		{"APP_AWS_SECRET_ACCESS_KEY", true},
		{"APP_DBPASS", true},
		{"APP_MYSQLPWD", true},
		{"APP_SSHKEY", true},
		{"APP_BASIC_AUTH", true},
		{"APP_AUTHORIZATION", true},
		{"APP_GITHUB_PAT", true},
		{"APP_REQUEST_SIGNATURE", true},
		{"APP_CARD_PIN", true},
		{"app_db_pass", true},
		{"APP_KEYS", true},
		{"APP_MASTERKEY", true},
		{"APP_TOTP", true},
		{"APP_JWT_SIGNING_KEY", true},
		// Ordinary names.
		{"APP_KEYBOARD_LAYOUT", false},
		{"APP_AUTHOR", false},
		{"APP_FEATURE", false},
		{"APP_REGION", false},
		{"APP_PASSENGER_LIMIT", false},
		{"APP_BYPASS_CACHE", false},
		{"APP_COMPASS_HEADING", false},
		{"APP_MONKEY_MODE", false},
		{"APP_SORT_KEY", false},
		{"APP_PUBLIC_KEY", false},
		{"APP_PARTITION_KEY", false},
		{"APP_KEY_PREFIX", false},
		{"APP_AUTH_URL", false},
		{"APP_AUTH_ENABLED", false},
		{"APP_JWT_ISSUER", false},
		{"APP_SALT_ROUNDS", false},
		{"APP_SIGNUP_URL", false},
		{"APP_DESIGN_THEME", false},
		{"APP_PIN_LENGTH", false},
		{"APP_SESSION_TIMEOUT", false},
		{"APP_OAUTH_ISSUER", false},
		{"APP_LOG_FORMAT", false},
		{"APP_PATH", false},
		{"APP_OPTION", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksSecret(tt.name); got != tt.want {
				t.Errorf("LooksSecret(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestRedactorAddsTheOperatorsNames(t *testing.T) {
	r := NewRedactor([]string{"license", " PARTNER_ID "})
	for name, want := range map[string]bool{
		"APP_LICENSE": true, "APP_ACME_PARTNER_ID": true, "APP_PARTNER": false, "APP_REGION": false, "APP_DB_PASS": true,
	} {
		if got := r.LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) with REDACT_NAMES=LICENSE,PARTNER_ID = %v, want %v", name, got, want)
		}
	}
	if LooksSecret("APP_LICENSE") {
		t.Error("the operator's names leak into the built-in rules")
	}
}

func TestRedactorValueHidesCredentialsAndKeepsTheRest(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	tests := []struct {
		what, name, value, want string
	}{
		{"a password in a postgres URL", "APP_CONNECTION_STRING", "postgres://user:hunter2@db/app",
			"postgres://user:[REDACTED]@db/app"},
		{"a password in a database URL with options", "APP_DATABASE_URL", "postgresql://app:hunter2@db.internal:5432/app?sslmode=require",
			"postgresql://app:[REDACTED]@db.internal:5432/app?sslmode=require"},
		{"a redis URL with an empty user", "APP_REDIS_URL", "redis://:hunter2@redis:6379/0", "redis://:[REDACTED]@redis:6379/0"},
		{"a URL without credentials", "APP_UPSTREAM", "https://api.example.com/v1?page=2", "https://api.example.com/v1?page=2"},
		{"a user name alone", "APP_AMQP", "amqp://guest@rabbit:5672/", "amqp://guest@rabbit:5672/"},
		{"a token as the user name", "APP_GIT_REMOTE", "https://0123456789abcdef0123456789abcdef@git.example.com/org/repo.git",
			"https://[REDACTED]@git.example.com/org/repo.git"},
		{"a Slack webhook", "APP_NOTIFY", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", Redacted},
		{"a Teams webhook", "APP_TEAMS", "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456", Redacted},
		{"a Discord webhook", "APP_DISCORD", "https://discord.com/api/webhooks/123/abc", Redacted},
		{"a path with hook on any host", "APP_CI", "https://ci.example.com/generic-webhook-trigger/invoke?x=1", Redacted},
		{"a hook name", "APP_WEBHOOK_URL", "https://example.com/x", Redacted},
		{"a signed S3 URL", "APP_EXPORT", "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101&X-Amz-Signature=abc123&X-Amz-Expires=60",
			"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-Expires=60"},
		{"an Azure SAS", "APP_BLOB", "https://a.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig=Zm9vYmFy",
			"https://a.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig=[REDACTED]"},
		{"token and key parameters", "APP_FEED", "https://feed.example.com/rss?token=t0k&key=k3y&lang=en",
			"https://feed.example.com/rss?token=[REDACTED]&key=[REDACTED]&lang=en"},
		{"a token in the fragment", "APP_CALLBACK", "https://app.example.com/cb#access_token=abc&state=1",
			"https://app.example.com/cb#access_token=[REDACTED]&state=1"},
		{"two URLs in one value", "APP_NODES", "redis://:p1@a:6379,redis://:p2@b:6379",
			"redis://:[REDACTED]@a:6379,redis://:[REDACTED]@b:6379"},
		{"a libpq keyword string", "APP_PG", "host=db user=app password=hunter2 dbname=app",
			"host=db user=app password=[REDACTED] dbname=app"},
		{"an ADO.NET string", "APP_MSSQL", "Server=db;Database=app;User Id=sa;Password=hunter2;",
			"Server=db;Database=app;User Id=sa;Password=[REDACTED];"},
		{"a quoted libpq password", "APP_PG2", "host=db password='hunter 2' port=5432", "host=db password='[REDACTED]' port=5432"},
		{"an unclosed quote", "APP_PG3", `password="hunter2 port=5432`, `password="[REDACTED] port=5432`},
		{"properties with blanks", "APP_PROPS", "db.url = jdbc:x\ndb.password = hunter2\n", "db.url = jdbc:x\ndb.password = [REDACTED]\n"},
		{"YAML", "APP_YAML", "user: app\npassword: hunter2\nport: 5432", "user: app\npassword: [REDACTED]\nport: 5432"},
		{"a MySQL DSN", "APP_MYSQL", "app:hunter2@tcp(db:3306)/app?parseTime=true", "app:[REDACTED]@tcp(db:3306)/app?parseTime=true"},
		{"JSON with a secret key", "APP_JSON", `{"user":"app","password":"hunter2"}`, `{"user":"app","password":"[REDACTED]"}`},
		{"a PEM key under any name", "APP_BLOB", "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----", Redacted},
		{"a JWT under any name", "APP_SAMPLE", jwt, Redacted},
		{"a bearer value", "APP_HEADER_VALUE", "Bearer abcdefghijklmnop", Redacted},
		{"a GitHub token under any name", "APP_CI_LOGIN", "ghp_0123456789abcdefghijABCDEFGHIJ012345", Redacted},
		{"a name that looks secret", "APP_DB_PASS", "hunter2", Redacted},
		{"an ordinary value", "APP_AUTHOR", "Ada Lovelace", "Ada Lovelace"},
		{"an ordinary layout", "APP_KEYBOARD_LAYOUT", "de-nodeadkeys", "de-nodeadkeys"},
		{"a host and port", "APP_BROKER", "kafka:9092", "kafka:9092"},
		{"a feature list", "APP_FEATURES", "search,export", "search,export"},
	}
	r := NewRedactor(nil)
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if got := r.Value(tt.name, tt.value); got != tt.want {
				t.Errorf("Value(%s, %q)\n got %q\nwant %q", tt.name, tt.value, got, tt.want)
			}
		})
	}
}

// TestRedactionFindsEveryCredentialOfALargeFile: a mounted file of 1 MiB full of pairs, on
// many lines and on one.
func TestRedactionFindsEveryCredentialOfALargeFile(t *testing.T) {
	r := NewRedactor(nil)
	pairs := strings.Repeat("host=db password=hunter2 url=https://u:pw@e.com/a?sig=x\n", (1<<20)/56)
	got := r.Value("big.conf", pairs)
	if strings.Contains(got, "hunter2") || strings.Contains(got, ":pw@") || strings.Contains(got, "sig=x") {
		t.Errorf("a credential survived in a large file")
	}
	const n = (1 << 20) / 20
	quotes := strings.Repeat(`password="hunter2" `, n)
	if got := r.Value("quotes.conf", quotes); strings.Count(got, `password="`+Redacted+`"`) != n || strings.Contains(got, "hunter2") {
		t.Errorf("%d of %d quoted passwords redacted on one line", strings.Count(got, Redacted), n)
	}
}

// FuzzRedactorValue: whatever the value, redaction never panics, and a password in a URL
// never survives it.
func FuzzRedactorValue(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@h/db", "a=b c=d", "x", "://", "a:b@", "https://hooks.slack.com/x", "password: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := NewRedactor(nil)
		_ = r.Value("APP_X", v)
		const pw = "Sup3rS3cretPw"
		got := r.Value("APP_X", "postgres://user:"+pw+"@"+strings.Map(func(c rune) rune {
			if c == '/' || c == '@' || c == ' ' || c == '\n' || c == '\t' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '?' || c == '#' {
				return 'x'
			}
			return c
		}, v)+"/db")
		if strings.Contains(got, pw) {
			t.Errorf("password survived: %q", got)
		}
	})
}
