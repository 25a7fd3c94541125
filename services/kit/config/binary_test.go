package config

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"strings"
	"testing"
	"unicode/utf16"
)

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	var b []byte
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xfeff}, units...)
	}
	for _, u := range units {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

// TestHidesBinary: a config file that is not UTF-8 text is shown base64-encoded only when no
// credential is in it and the redactor can see that.
func TestHidesBinary(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("db.password=hunter2\n"))
	_ = zw.Close()
	_, key, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	random := sha256.Sum256([]byte("a raw key"))
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat(random[:], 8)...)
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), append(make([]byte, 64), "hello, world\x00usage: app [flags]\x00"...)...)

	tests := []struct {
		what, name string
		content    []byte
		hide       bool
	}{
		// 1. Text that is not UTF-8: the text rules run over it.
		{"Latin-1 properties with a password", "application.properties", []byte("# R\xe9glages\ndb.url=jdbc:postgresql://db/app\ndb.password=hunter2\n"), true},
		{"Windows-1252 text with a Bearer token", "client.conf", []byte("# \x93client\x94\nAuthorization: Bearer abcdefghijklmnop123\n"), true},
		{"Latin-1 text with a URL password", "jobs.txt", []byte("caf\xe9 postgres://app:hunter2@db/app\n"), true},
		{"UTF-16LE with a BOM and a password", "app.ini", utf16Bytes("[db]\r\npassword=hunter2\r\n", false, true), true},
		{"UTF-16BE without a BOM and a token", "app.yaml", utf16Bytes("token: abcdef123456\n", true, false), true},
		{"a PEM key in a binary file", "bundle.bin", append([]byte{0, 1, 2}, "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"...), true},
		{"a credential name", "db-password.bin", []byte{0xff, 0x00, 0x01}, true},
		// Formats that hold keys, and what the redactor cannot see into.
		{"a DER private key", "server.der", der, true},
		{"a Java keystore", "trust.jks", []byte("\xfe\xed\xfe\xed\x00\x00\x00\x02"), true},
		{"gzip", "settings.gz", gz.Bytes(), true},
		{"zip", "bundle.jar", []byte("PK\x03\x04\x14\x00\x00\x00"), true},
		{"32 random bytes", "session.bin", random[:], true},
		// Binary files without a credential stay shown.
		{"three bytes", "logo.bin", []byte{0xff, 0x00, 0x01}, false},
		{"a PNG", "logo.png", png, false},
		{"an executable", "tool", elf, false},
		{"Latin-1 text without a credential", "messages.properties", []byte("# R\xe9glages\ngreeting=Bonjour \xe0 tous\nlog.level=info\n"), false},
		{"UTF-16 text without a credential", "readme.txt", utf16Bytes("Hello, world\r\n", false, true), false},
	}
	r := NewRedactor(nil)
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if got := r.HidesBinary(tt.name, tt.content); got != tt.hide {
				t.Errorf("HidesBinary(%s, %q) = %v, want %v", tt.name, tt.content[:min(len(tt.content), 40)], got, tt.hide)
			}
		})
	}
	if strings.Contains(string(gz.Bytes()), "hunter2") {
		t.Fatal("gzip did not compress the fixture")
	}
}
