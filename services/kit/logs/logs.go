// Package logs is where a service's log lines go: a Sink that batches the lines written to it
// into few large writes, so that logging every request costs a copy rather than a system call.
//
// A Sink never drops a line. A line is written out at most FlushDelay after it was logged, at
// once when BufferSize/4 bytes are waiting, and on Flush and Close. A writer blocks while
// BufferSize bytes are waiting for a slow output (a full pipe), so logging slows the service
// rather than losing lines. A process that is killed (SIGKILL, or a crash outside a request)
// loses at most the lines of the last FlushDelay; kit.Run closes its Sink on every way out.
package logs

import (
	"io"
	"log/slog"
	"sync"
	"time"
)

// Batching of a Sink.
const (
	// FlushDelay is the longest a line waits before it is written out.
	FlushDelay = 10 * time.Millisecond
	// BufferSize is how many bytes may wait; writers block beyond it until a write completes.
	// A Sink holds two buffers of this size, so that one fills while the other is written.
	BufferSize = 256 << 10
)

// Sink is a buffered, concurrency-safe io.Writer for whole lines: each Write is kept whole and
// in order. Close it to flush and stop its goroutine; writes after Close go straight through.
type Sink struct {
	w io.Writer

	mu       sync.Mutex
	written  sync.Cond // signalled when a write to w completes
	buf      []byte    // the lines waiting
	spare    []byte
	flushing bool
	closed   bool
	err      error // the first error of w

	wake chan struct{} // the first line is waiting, or BufferSize/4 bytes are
	stop chan struct{}
	done chan struct{}
}

// NewSink starts a Sink that writes to w.
func NewSink(w io.Writer) *Sink {
	s := &Sink{
		w: w, buf: make([]byte, 0, BufferSize), spare: make([]byte, 0, BufferSize),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.written.L = &s.mu
	go s.run()
	return s
}

// NewLogger is a JSON slog.Logger at level that writes to w (a Sink in a service).
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Write queues p, whole. It blocks while BufferSize bytes are already waiting.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		for s.flushing {
			s.written.Wait()
		}
		s.flushLocked() // what was queued before Close goes first
		return s.w.Write(p)
	}
	for len(s.buf) > 0 && len(s.buf)+len(p) > BufferSize {
		if !s.flushing {
			s.flushLocked()
			continue
		}
		s.written.Wait()
	}
	if len(p) > BufferSize { // one huge line (a stack): written through, the buffers never grow
		for s.flushing {
			s.written.Wait()
		}
		s.flushLocked()
		return s.w.Write(p)
	}
	first := len(s.buf) == 0
	s.buf = append(s.buf, p...)
	if first || len(s.buf) >= BufferSize/4 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out every line queued so far and returns the first error of the output.
func (s *Sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing {
		s.written.Wait()
	}
	s.flushLocked()
	return s.err
}

// Close flushes and stops the Sink's goroutine. It returns the first error of the output.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.Flush()
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.Flush()
}

func (s *Sink) run() {
	defer close(s.done)
	timer := time.NewTimer(FlushDelay)
	timer.Stop()
	for {
		select {
		case <-s.wake:
		case <-s.stop:
			return
		}
		// Let lines gather for FlushDelay, unless a quarter of the buffer is already waiting.
		timer.Reset(FlushDelay)
		select {
		case <-timer.C:
		case <-s.wake:
			timer.Stop()
		case <-s.stop:
			timer.Stop()
			return
		}
		s.mu.Lock()
		for s.flushing {
			s.written.Wait()
		}
		s.flushLocked()
		s.mu.Unlock()
	}
}

// flushLocked writes the waiting lines out, with s.mu released during the write so that
// writers go on filling the other buffer. s.mu is held on entry and on return, and no other
// flush is under way.
func (s *Sink) flushLocked() {
	if len(s.buf) == 0 {
		return
	}
	out := s.buf
	s.buf, s.spare = s.spare[:0], nil
	s.flushing = true
	s.mu.Unlock()
	_, err := s.w.Write(out)
	s.mu.Lock()
	s.flushing = false
	if err != nil && s.err == nil {
		s.err = err
	}
	s.spare = out[:0]
	s.written.Broadcast()
}
