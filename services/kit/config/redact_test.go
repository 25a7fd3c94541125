package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
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

// FuzzRedactorValue: whatever the value, redaction never panics, a password in a URL never
// survives it, and neither does a credential on a line of its own after the value, in any of
// the shapes the rules know.
func FuzzRedactorValue(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@h/db", "a=b c=d", "x", "://", "a:b@", "https://hooks.slack.com/x", "password: x",
		// the shapes of TestRedactorValueClosesTheReviewedBypasses and ...FurtherShapes
		"Authorization: Bearer abcdefghijklmnop123", "Authorization: Basic aHVudGVyMg==", "password: |\n  hunter2",
		"password: >-\n  hunter2", "password:\n  hunter2", "apiKeys:\n- a\n- b", "<password>hunter2</password>",
		`<db password="hunter2"/>`, `{"apiKeys":["hunter2","x"]}`, "postgres://app:pa/ss@db/app", "postgres://app:pa#ss@db/app",
		"postgres://app:pa?ss@db/app", "user:pa/ss@tcp(db)/app", "user:p@ss@tcp(db)/app", "Password={a;b}};c}", `Password="a;b"`,
		"--password hunter2", "--password=hunter2", "-p hunter2", `["--token", "x"]`, "- --token\n- x", "-phunter2",
		"PASSWORD=hunter2", "export TOKEN=x", `password = "hunter2"`, `{"url":"postgres:\/\/app:hunter2@db\/app"}`,
		"spring.datasource.password=x", "password = <<EOF\nx\nEOF", `password = """` + "\nx\n" + `"""`, "password=a\\\n  b",
		"- name: DB_PASSWORD\n  value: x", `<add key="Password" value="x"/>`, "<name>db.password</name><value>x</value>",
		"requirepass x", "machine h login u password x", "ENV PASSWORD x", "sqlplus scott/tiger@orcl",
		"url=postgres%3A%2F%2Fapp%3Ax%40db", "<password><![CDATA[x]]></password>", "password: \"x\ny\"", "{\n\"password\"\n:\n\"x\"\n}",
		"Digest username=\"u\", response=\"x\"", "password=[", "password={", "password='", "<password x='", "\xff\xfe\x00p\x00",
	} {
		f.Add(s)
	}
	const pw = "Sup3rS3cretPw"
	lines := []string{
		"db_password=" + pw, "password: " + pw, `{"apiKey": "` + pw + `"}`, "Authorization: Bearer " + pw,
		"--password " + pw, "<password>" + pw + "</password>", "postgres://u:" + pw + "@h/db", "token = '" + pw + "'",
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := NewRedactor(nil)
		_ = r.Value("APP_X", v)
		_ = r.HidesBinary("x.bin", []byte(v))
		got := r.Value("APP_X", "postgres://user:"+pw+"@"+strings.Map(func(c rune) rune {
			if c == '/' || c == '@' || c == ' ' || c == '\n' || c == '\t' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '?' || c == '#' {
				return 'x'
			}
			return c
		}, v)+"/db")
		if strings.Contains(got, pw) {
			t.Errorf("password survived: %q", got)
		}
		for _, line := range lines {
			if got := r.Value("APP_X", v+"\n"+line+"\n"); strings.Contains(got, pw) {
				t.Errorf("password survived after %q: %q", v, got)
			}
		}
	})
}

// TestRedactionTakesLinearTimeOnHostileInput: values made of what once sent a scan to the end
// of the value from every occurrence (unclosed brackets, quotes and tags, naming keys before
// text that never becomes a key, quoted flags) take about as long as any other of their size.
func TestRedactionTakesLinearTimeOnHostileInput(t *testing.T) {
	atoms := []string{
		"password=[ ", "password={ ", "Password={a ", "password=\"", "password='", "<password>x", "<a x=\"", "<a x='",
		"name: x a:b@", "name: x :", "@name: x ", "\"--password\", ", " -px", "a:b@", "<name>password</name>x",
		"password: |\n", "password:\n", "password=<<EOF\n", "password=<<EOF ", "Bearer ", "=Bearer ", "Digest a=b ",
		"a://b:c ", "password=a-", " ", "\n", "_ghp", "://", "%3A%2F%2F",
	}
	var distinct strings.Builder
	for i := 0; distinct.Len() < 256<<10; i++ {
		fmt.Fprintf(&distinct, "<password%d>x", i)
	}
	inputs := []string{distinct.String(), strings.Repeat("password=[", 13<<10) + strings.Repeat("]", 128<<10),
		// Every { looked for its ODBC close to the end of the line: 1.5 s for 128 KiB, 133 s for 1 MiB.
		strings.Repeat("Pwd={x}};", (256<<10)/9) + "Pwd={x}",
		strings.Repeat("password:\n", 1) + func() string {
			var b strings.Builder
			for i := 1; b.Len() < 256<<10; i++ {
				b.WriteString(strings.Repeat(" ", i%700) + "password:\n")
			}
			return b.String()
		}()}
	for _, a := range atoms {
		inputs = append(inputs, strings.Repeat(a, (256<<10)/len(a)))
	}
	r := NewRedactor(nil)
	for _, v := range inputs {
		start := time.Now()
		r.Value("f", v)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%d KiB of %q took %v", len(v)>>10, v[:min(len(v), 24)], d)
		}
	}
}

// redactionRow is a value, what Value must show of it, and the credentials that must be gone.
type redactionRow struct {
	what, value, want string
	secrets           []string
}

func runRedactionRows(t *testing.T, rows []redactionRow) {
	t.Helper()
	r := NewRedactor(nil)
	for _, tt := range rows {
		t.Run(tt.what, func(t *testing.T) {
			got := r.Value("app.conf", tt.value)
			for _, s := range tt.secrets {
				if strings.Contains(got, s) {
					t.Errorf("Value(%q) = %q: %q leaks", tt.value, got, s)
				}
			}
			if got != tt.want {
				t.Errorf("Value(%q)\n got %q\nwant %q", tt.value, got, tt.want)
			}
			// Load stores APP_ variables redacted, and /config redacts them again.
			if again := r.Value("app.conf", got); again != got {
				t.Errorf("Value(Value(%q)) = %q, want %q unchanged", tt.value, again, got)
			}
		})
	}
}

// TestRedactorValueClosesTheReviewedBypasses: the forms an adversarial review found leaking, by
// the number of its finding (1, files that are not UTF-8, is TestHidesBinary). Where the rule
// hides only the secret part, want shows the rest kept.
func TestRedactorValueClosesTheReviewedBypasses(t *testing.T) {
	runRedactionRows(t, []redactionRow{
		// 2. A credential key's value runs to the end of its line; a scheme takes its parameter.
		{"2 Authorization Bearer", "Authorization: Bearer abcdefghijklmnop123", "Authorization: [REDACTED]", []string{"abcdefghijklmnop123"}},
		{"2 Authorization Basic", "Authorization: Basic aHVudGVyMg==", "Authorization: [REDACTED]", []string{"aHVudGVyMg"}},
		{"2 Basic in a value of any key", "proxy_set_header X-Upstream \"Basic aHVudGVyMg==\";",
			"proxy_set_header X-Upstream \"Basic [REDACTED]\";", []string{"aHVudGVyMg"}},
		{"2 Token in a flow mapping", "headers: {Accept: json, X-Custom: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b}",
			"headers: {Accept: json, X-Custom: Token [REDACTED]}", []string{"9944b0919"}},
		{"2 Digest and its parameters", `Authorization: Digest username="app", response="6629fae49393a05397450978507c4ef1"`,
			"Authorization: [REDACTED]", []string{"6629fae4"}},
		{"2 a header in a quoted curl argument", `curl -H "Authorization: Bearer hunter2hunter2" https://api.example.com/v1`,
			`curl -H "Authorization: [REDACTED]" https://api.example.com/v1`, []string{"hunter2"}},
		{"2 a value of several words", "password = my hunter2 phrase\nuser = app", "password = [REDACTED]\nuser = app", []string{"hunter2", "phrase"}},
		// 3. YAML: the block under a credential key.
		{"3 a literal block", "password: |\n  hunter2\n  hunter3\nuser: app", "password: |\n  [REDACTED]\nuser: app", []string{"hunter2", "hunter3"}},
		{"3 a folded block", "password: >-\n  hunter2\nuser: app", "password: >-\n  [REDACTED]\nuser: app", []string{"hunter2"}},
		{"3 a value on the next line", "password:\n  hunter2\nuser: app", "password:\n  [REDACTED]\nuser: app", []string{"hunter2"}},
		{"3 a nested value on the next line", "db:\n  password:\n    hunter2\n  user: app", "db:\n  password:\n    [REDACTED]\n  user: app", []string{"hunter2"}},
		{"3 a sequence at the key's column", "apiKeys:\n- hunter2\n- hunter3\nuser: app", "apiKeys:\n[REDACTED]\nuser: app", []string{"hunter2", "hunter3"}},
		{"3 a plain scalar continued", "password: hunter\n  2\nuser: app", "password: [REDACTED]\nuser: app", []string{"hunter", "  2"}},
		// 4. XML and JSON arrays.
		{"4 an XML element", "<db><user>app</user><password>hunter2</password></db>",
			"<db><user>app</user><password>[REDACTED]</password></db>", []string{"hunter2"}},
		{"4 an XML attribute", `<db user="app" password="hunter2"/>`, `<db user="app" password="[REDACTED]"/>`, []string{"hunter2"}},
		{"4 CDATA in an XML element", "<password><![CDATA[hunter2]]></password>", "<password>[REDACTED]</password>", []string{"hunter2"}},
		{"4 an attribute of a credential element", `<password value="hunter2"/>`, `<password value="[REDACTED]"/>`, []string{"hunter2"}},
		{"4 a JSON array", `{"user":"app","apiKeys":["hunter2","x"]}`, `{"user":"app","apiKeys":"[REDACTED]"}`, []string{"hunter2"}},
		{"4 a JSON array on several lines", "{\n  \"apiKeys\": [\n    \"hunter2\"\n  ],\n  \"user\": \"app\"\n}",
			"{\n  \"apiKeys\": \"[REDACTED]\",\n  \"user\": \"app\"\n}", []string{"hunter2"}},
		// 5. URL passwords with / # ? @: to the last @.
		{"5 a slash", "postgres://app:pa/ss@db/app", "postgres://app:[REDACTED]@db/app", []string{"pa/ss", "ss@"}},
		{"5 a hash", "postgres://app:pa#ss@db/app", "postgres://app:[REDACTED]@db/app", []string{"pa#ss", "ss@"}},
		{"5 a question mark", "postgres://app:pa?ss@db/app", "postgres://app:[REDACTED]@db/app", []string{"pa?ss", "ss@"}},
		{"5 an at sign", "postgres://app:p@ss@db/app?sslmode=require", "postgres://app:[REDACTED]@db/app?sslmode=require", []string{"ss@"}},
		{"5 a MySQL DSN with a slash", "user:pa/ss@tcp(db)/app", "user:[REDACTED]@tcp(db)/app", []string{"pa/ss", "ss@"}},
		{"5 a MySQL DSN with an at sign", "user:p@ss@tcp(db)/app?parseTime=true", "user:[REDACTED]@tcp(db)/app?parseTime=true", []string{"ss@"}},
		// 6. Quoting in connection strings.
		{"6 ADO.NET braces", "Server=db;Password={a;b}};c};User Id=app", "Server=db;Password=[REDACTED];User Id=app", []string{"b}", "c}"}},
		{"6 ODBC braces", "Driver={ODBC};PWD={hunter;2};UID=app", "Driver={ODBC};PWD=[REDACTED];UID=app", []string{"hunter", ";2}"}},
		{"6 double quotes", `Server=db;Password="a;hunter2";User Id=app`, `Server=db;Password="[REDACTED]";User Id=app`, []string{"hunter2"}},
		{"6 single quotes, doubled", "Server=db;Password='a;b''hunter2';User Id=app", "Server=db;Password='[REDACTED]';User Id=app", []string{"hunter2"}},
		{"6 no quotes, a separator inside", "Server=db;Password=a;hunter2", "Server=db;Password=[REDACTED]", []string{"hunter2"}},
		// 7. Command lines.
		{"7 --password value", "--password hunter2 --user app", "--password [REDACTED] --user app", []string{"hunter2"}},
		{"7 --password=value", "--password=hunter2 --user app", "--password=[REDACTED] --user app", []string{"hunter2"}},
		{"7 -p value", "mysql -p hunter2 -u app", "mysql -p [REDACTED] -u app", []string{"hunter2"}},
		{"7 an argument list", `args: ["--db-password", "hunter2", "--verbose"]`, `args: ["--db-password", "[REDACTED]", "--verbose"]`, []string{"hunter2"}},
		{"7 a YAML argument list", "args:\n  - --token\n  - hunter2\n  - --verbose", "args:\n  - --token\n  - [REDACTED]\n  - --verbose", []string{"hunter2"}},
		{"7 a single-dash long flag", "keytool -storepass hunter2 -list", "keytool -storepass [REDACTED] -list", []string{"hunter2"}},
		{"7 a flow sequence", "args: [--password, hunter2, --verbose]", "args: [--password, [REDACTED], --verbose]", []string{"hunter2"}},
	})
}

// TestRedactorValueClosesFurtherShapes: shapes found beyond the review, and those it asked
// about (.env, export, TOML, an escaped slash, upper case, prefixes).
func TestRedactorValueClosesFurtherShapes(t *testing.T) {
	runRedactionRows(t, []redactionRow{
		{".env", "PASSWORD=hunter2\nHOST=db", "PASSWORD=[REDACTED]\nHOST=db", []string{"hunter2"}},
		{".env with a blank in the value", "PASSWORD=hunter 2\nHOST=db", "PASSWORD=[REDACTED]\nHOST=db", []string{"hunter", " 2"}},
		{"export", "export TOKEN=hunter2\nexport HOST=db", "export TOKEN=[REDACTED]\nexport HOST=db", []string{"hunter2"}},
		{"TOML with blanks", "password = \"hunter2\"\nhost = \"db\"", "password = \"[REDACTED]\"\nhost = \"db\"", []string{"hunter2"}},
		{"a URL in JSON with escaped slashes", `{"url":"postgres:\/\/app:hunter2@db\/app"}`, `{"url":"postgres:\/\/app:[REDACTED]@db\/app"}`, []string{"hunter2"}},
		{"a prefixed upper-case key", "DB_PASSWORD=hunter2", "DB_PASSWORD=[REDACTED]", []string{"hunter2"}},
		{"Spring", "spring.datasource.password=hunter2\nspring.datasource.url=jdbc:postgresql://db/app",
			"spring.datasource.password=[REDACTED]\nspring.datasource.url=jdbc:postgresql://db/app", []string{"hunter2"}},
		{"a camelCase key", `{"accessKey":"hunter2","region":"eu"}`, `{"accessKey":"[REDACTED]","region":"eu"}`, []string{"hunter2"}},
		{"properties with a colon", "db.password:hunter2", "db.password:[REDACTED]", []string{"hunter2"}},
		{"properties continued", "password=hun\\\n  ter2\nhost=db", "password=[REDACTED]\nhost=db", []string{"hun", "ter2"}},
		{"make's :=", "PASSWORD := hunter2", "PASSWORD := [REDACTED]", []string{"hunter2"}},
		{"PHP's =>", "'password' => 'hunter2',", "'password' => '[REDACTED]',", []string{"hunter2"}},
		{"shell words glued", `PASSWORD="abc"'hunter2'`, `PASSWORD="[REDACTED]'`, []string{"abc", "hunter2"}},
		{"a YAML string over two lines", "password: \"hunter\n  2\"\nuser: app", "password: \"[REDACTED]\"\nuser: app", []string{"hunter", "2\""}},
		{"JSON broken around the colon", "{\n\"password\"\n:\n\"hunter2\"\n}", "{\n\"password\"\n:\n\"[REDACTED]\"\n}", []string{"hunter2"}},
		{"TOML's triple quotes", "password = \"\"\"\nhunter2\n\"\"\"\nhost = \"db\"", "password = \"\"\"\n[REDACTED]\n\"\"\"\nhost = \"db\"", []string{"hunter2"}},
		{"a heredoc", "password = <<EOF\nhunter2\nEOF\nhost = db", "password = <<EOF\n[REDACTED]\nEOF\nhost = db", []string{"hunter2"}},
		{"Kubernetes env", "env:\n- name: DB_PASSWORD\n  value: hunter2\n- name: HOST\n  value: db",
			"env:\n- name: DB_PASSWORD\n  value: [REDACTED]\n- name: HOST\n  value: db", []string{"hunter2"}},
		{".NET appSettings", `<add key="Password" value="hunter2"/><add key="Host" value="db"/>`,
			`<add key="Password" value="[REDACTED]"/><add key="Host" value="db"/>`, []string{"hunter2"}},
		{"Hadoop's name and value", "<property><name>db.password</name><value>hunter2</value></property><property><name>db.host</name><value>db</value></property>",
			"<property><name>db.password</name><value>[REDACTED]</value></property><property><name>db.host</name><value>db</value></property>", []string{"hunter2"}},
		{"XML key and value elements", "<item><key>db.host</key><value>db</value></item><item><key>db.password</key><value>hunter2</value></item>",
			"<item><key>db.host</key><value>db</value></item><item><key>db.password</key><value>[REDACTED]</value></item>", []string{"hunter2"}},
		{"Java XML properties", `<entry key="db.password">hunter2</entry><entry key="db.host">db</entry>`,
			`<entry key="db.password">[REDACTED]</entry><entry key="db.host">db</entry>`, []string{"hunter2"}},
		{"redis.conf", "requirepass hunter2\nport 6379", "requirepass [REDACTED]\nport 6379", []string{"hunter2"}},
		{"Dockerfile ENV", "ENV DB_PASSWORD hunter2\nENV HOST db", "ENV DB_PASSWORD [REDACTED]\nENV HOST db", []string{"hunter2"}},
		{"csh setenv", "setenv PASSWORD hunter2", "setenv PASSWORD [REDACTED]", []string{"hunter2"}},
		{"netrc", "machine api.example.com login bob password hunter2", "machine api.example.com login bob password [REDACTED]", []string{"hunter2"}},
		{"HAProxy auth", "stats auth admin:hunter2", "stats auth admin:[REDACTED]", []string{"hunter2"}},
		{"an Azure connection string", "AccountName=acct;AccountKey=aHVudGVyMg==;EndpointSuffix=core.windows.net",
			"AccountName=acct;AccountKey=[REDACTED];EndpointSuffix=core.windows.net", []string{"aHVudGVyMg"}},
		{"a cookie", "Cookie: session=hunter2", "Cookie: [REDACTED]", []string{"hunter2"}},
		{"mysql -p attached", "mysqladmin -uroot -phunter2 ping", "mysqladmin -uroot -p[REDACTED] ping", []string{"hunter2"}},
		{"curl -u", "curl -u admin:hunter2 https://x", "curl -u admin:[REDACTED] https://x", []string{"hunter2"}},
		{"sqlplus", "sqlplus scott/tiger@orcl", "sqlplus scott/[REDACTED]@orcl", []string{"tiger"}},
		{"a percent-encoded URL", "url=postgres%3A%2F%2Fapp%3Ahunter2%40db%2Fapp", "url=postgres%3A%2F%2Fapp%3A[REDACTED]%40db%2Fapp", []string{"hunter2"}},
		{"a blank in a URL's password", "DATABASE_URL=postgres://app:pa ss@db/app", "DATABASE_URL=postgres://app:[REDACTED]@db/app", []string{"pa ss", "ss@"}},
		{"a key in another language", "contraseña_db_password=hunter2", "contraseña_db_password=[REDACTED]", []string{"hunter2"}},
		{"a German key", "passwort=hunter2", "passwort=[REDACTED]", []string{"hunter2"}},
	})
}

// TestRedactorValueKeepsWhatIsNoCredential: values near the new rules that hold no credential.
func TestRedactorValueKeepsWhatIsNoCredential(t *testing.T) {
	var rows []redactionRow
	for _, v := range []string{
		"https://example.com/path?time=10:30&email=a@b.com", "uses: actions/checkout@v4", "image: docker.io/library/nginx@sha256:abc",
		"mailto:ops@example.com", "url: https://api.example.com:8443/v1", "host=db port=5432 sslmode=require",
		"keyboard: de\nauthor: Ada", "<add key=\"Host\" value=\"db\"/>", "- name: HOST\n  value: db",
		"sort-key: id\npublic_key: ssh-ed25519 AAAA", "when: 12:30", "--verbose --port 8080",
	} {
		rows = append(rows, redactionRow{v, v, v, nil})
	}
	runRedactionRows(t, rows)
}

// BenchmarkRedactorValue: a mounted file of 1 MiB of settings in the common formats, with a
// credential in each; CONFIG_DIR may hold 64 of them, redacted at start.
func BenchmarkRedactorValue(b *testing.B) {
	kinds := []string{
		"server:\n  port: 8080\ndatabase:\n  url: postgres://app:hunter2@db.internal:5432/app?sslmode=require\n  password: hunter2\nfeatures:\n  - search\n",
		"db.url=jdbc:postgresql://db:5432/app\ndb.user=app\ndb.password=hunter2\nlog.level=info\n# a comment\n",
		`{"name":"svc","port":8080,"db":{"host":"db","password":"hunter2"},"tags":["a","b"],"url":"https://api.example.com/v1?page=2&token=abc"}` + "\n",
		"<config><server port=\"8080\"/><db user=\"app\" password=\"hunter2\">text</db><feature name=\"search\" enabled=\"true\"/></config>\n",
		"The quick brown fox jumps over the lazy dog. Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n",
	}
	var file strings.Builder
	for file.Len() < 1<<20 {
		for _, k := range kinds {
			file.WriteString(k)
		}
	}
	v := file.String()
	r := NewRedactor(nil)
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		r.Value("app.conf", v)
	}
}
