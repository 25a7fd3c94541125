// Package lineprefix writes a tool's output line by line under a prefix, so that what docker
// or terraform print reads as part of the step that ran them.
package lineprefix

import (
	"bytes"
	"io"
	"sync"
)

// New returns a writer that writes each complete line to w under prefix. It is safe for
// concurrent use, as a command's stdout and stderr share it.
func New(w io.Writer, prefix string) io.Writer { return &writer{w: w, prefix: prefix} }

type writer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

func (p *writer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			p.buf.Write(line) // an incomplete line waits for the next write
			return len(b), nil
		}
		if _, err := io.WriteString(p.w, p.prefix+string(line)); err != nil {
			return 0, err
		}
	}
}

// Locked makes w safe for writers that run at once, such as the prefixed outputs of parallel
// builds sharing one terminal or buffer.
func Locked(w io.Writer) io.Writer { return &locked{w: w} }

type locked struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *locked) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
