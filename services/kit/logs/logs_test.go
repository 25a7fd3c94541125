package logs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an output that the Sink's goroutine and the test can share.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestSinkKeepsEveryLineWholeAndInOrderPerWriter(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(f)
	const writers, lines = 8, 5000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(s, "{\"writer\":%d,\"line\":%d,\"pad\":%q}\n", w, i, strings.Repeat("x", i%300))
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var w, i int
		if _, err := fmt.Sscanf(l, "{\"writer\":%d,\"line\":%d,", &w, &i); err != nil || !strings.HasSuffix(l, "\"}") {
			t.Fatalf("a line is not whole: %q", l)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
}

func TestSinkWritesALineOutWithoutBeingFlushed(t *testing.T) {
	out := &lockedBuffer{}
	s := NewSink(out)
	t.Cleanup(func() { _ = s.Close() })
	_, _ = s.Write([]byte("one\n"))
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the line was not written out within 5s (FlushDelay is %s)", FlushDelay)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSinkBatchesLinesIntoFewWrites(t *testing.T) {
	out := &lockedBuffer{}
	s := NewSink(out)
	for range 1000 {
		_, _ = s.Write([]byte(`{"msg":"request"}` + "\n"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out.writes > 10 || strings.Count(out.String(), "\n") != 1000 {
		t.Errorf("1000 lines in %d writes, %d lines out; want a few writes and every line", out.writes, strings.Count(out.String(), "\n"))
	}
}

// blockingWriter blocks every write until released, like a pipe nobody reads.
type blockingWriter struct {
	release chan struct{}
	lockedBuffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.lockedBuffer.Write(p)
}

func TestSinkBlocksWhenFullRatherThanDropping(t *testing.T) {
	out := &blockingWriter{release: make(chan struct{})}
	s := NewSink(out)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	const n = 3 * BufferSize / 1024
	done := make(chan struct{})
	go func() {
		for range n {
			_, _ = s.Write(line)
		}
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("3 x BufferSize were accepted while the output was blocked: lines would be held without bound")
	case <-time.After(200 * time.Millisecond):
	}
	close(out.release)
	<-done
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(out.String()); got != n*len(line) {
		t.Errorf("%d bytes out, want %d: lines were dropped", got, n*len(line))
	}
}

func TestSinkAfterCloseWritesThroughInOrder(t *testing.T) {
	out := &lockedBuffer{}
	s := NewSink(out)
	_, _ = s.Write([]byte("before\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte("after\n"))
	if out.String() != "before\nafter\n" {
		t.Errorf("output %q", out.String())
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close = %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestSinkReportsTheOutputsError(t *testing.T) {
	s := NewSink(failingWriter{})
	_, _ = s.Write([]byte("x\n"))
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("Close = %v, want the output's error", err)
	}
}
