package config

import (
	"bytes"
	"math"
	"strings"
)

// HidesBinary reports whether a config file that is not UTF-8 text (see Config.BinaryFiles)
// must be shown as Redacted rather than base64-encoded. It fails safe: the file is hidden
// when its name looks like a credential; when a text in it would be redacted (the text rules
// run over its bytes as they are, so Latin-1 or Windows-1252 text is read as text, and over
// its bytes without NULs, so UTF-16 and UTF-32 text is too); when it is a format that holds
// keys (DER, PKCS#12, Java keystores, keytabs, OpenPGP, KeePass); and when the redactor
// cannot see into it: compressed or archived (gzip, zip, ...), or random-looking bytes of no
// known media format (a raw key, an encrypted blob). Other binary files (images, fonts, ...)
// are shown.
func (r Redactor) HidesBinary(name string, content []byte) bool {
	if r.LooksSecret(name) || holdsKeys(content) || opaque(content) {
		return true
	}
	if s := string(content); r.Value(name, s) != s {
		return true
	}
	if bytes.IndexByte(content, 0) >= 0 {
		if s := string(bytes.ReplaceAll(content, []byte{0}, nil)); r.Value(name, s) != s {
			return true
		}
	}
	return !media(content) && looksRandom(content)
}

// holdsKeys reports the formats of keys and keystores: DER (a SEQUENCE: PKCS#1, PKCS#8,
// PKCS#12, certificates), JKS, JCEKS, Kerberos keytabs, KeePass databases, and OpenPGP
// packets (secret keys, encrypted messages).
func holdsKeys(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	switch {
	case b[0] == 0x30 && (b[1] >= 0x81 && b[1] <= 0x84 || int(b[1])+2 == len(b)):
		return true // DER SEQUENCE
	case hasPrefix(b, "\xfe\xed\xfe\xed"), hasPrefix(b, "\xce\xce\xce\xce"): // JKS, JCEKS
		return true
	case b[0] == 0x05 && (b[1] == 0x01 || b[1] == 0x02): // keytab
		return true
	case hasPrefix(b, "\x03\xd9\xa2\x9a"): // KeePass
		return true
	}
	// OpenPGP, old format (tag in bits 5-2): 1 PKESK, 3 SKESK, 5 secret key, 7 secret subkey,
	// 9 encrypted data; new format: those and 18, 20 (encrypted data).
	if c := b[0]; c&0xc0 == 0x80 {
		switch (c >> 2) & 0x0f {
		case 1, 3, 5, 7, 9:
			return true
		}
	} else if c&0xc0 == 0xc0 {
		switch c & 0x3f {
		case 1, 3, 5, 7, 9, 18, 20:
			return true
		}
	}
	return false
}

// opaque reports compressed, archived or encrypted formats, whose content the text rules
// cannot see: gzip, zlib, zip (jar, docx, ...), bzip2, xz, zstd, lz4, 7z, rar, cab, tar, and
// OpenSSL's enc.
func opaque(b []byte) bool {
	for _, magic := range []string{"\x1f\x8b", "PK\x03\x04", "PK\x05\x06", "PK\x07\x08", "BZh", "\xfd7zXZ\x00",
		"\x28\xb5\x2f\xfd", "\x04\x22\x4d\x18", "7z\xbc\xaf\x27\x1c", "Rar!\x1a\x07", "MSCF", "Salted__"} {
		if hasPrefix(b, magic) {
			return true
		}
	}
	if len(b) >= 2 && b[0] == 0x78 && (int(b[0])<<8|int(b[1]))%31 == 0 {
		return true // zlib
	}
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}

// media reports image, font, audio and video formats, whose bytes look random without being
// a credential.
func media(b []byte) bool {
	for _, magic := range []string{"\x89PNG", "\xff\xd8\xff", "GIF87a", "GIF89a", "BM", "II*\x00", "MM\x00*",
		"\x00\x00\x01\x00", "OTTO", "\x00\x01\x00\x00", "wOFF", "wOF2", "true", "ttcf", "ID3", "OggS", "fLaC",
		"%PDF"} {
		if hasPrefix(b, magic) {
			return true
		}
	}
	if len(b) >= 12 && string(b[:4]) == "RIFF" && strings.Contains("WEBPWAVEAVI ", string(b[8:12])) {
		return true
	}
	return len(b) >= 12 && string(b[4:8]) == "ftyp" // MP4, HEIC, AVIF
}

// looksRandom reports bytes whose entropy is near the most their length allows: a raw key,
// a token or an encrypted blob. Files of fewer than 16 bytes are too short to tell, and text in
// an 8-bit encoding (nearly all printable) is no blob.
func looksRandom(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	var counts [256]int
	printable := 0
	for _, c := range b {
		counts[c]++
		if c >= 0x20 && c < 0x7f || c >= 0xa0 || c == '\t' || c == '\n' || c == '\r' {
			printable++
		}
	}
	if printable*100 >= 95*len(b) {
		return false
	}
	h, n := 0.0, float64(len(b))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h >= 0.9*math.Min(8, math.Log2(n))
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }
