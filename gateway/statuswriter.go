package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
)

// statusRecorder is what the metrics middleware needs of its writer.
type statusRecorder interface {
	http.ResponseWriter
	// Status is the answer's status, 0 before one was written.
	Status() int
}

// recordStatus wraps w so that the answer's status can be read once the
// handler is done. The writer net/http gives an HTTP/1 handler (a
// Flusher, Hijacker and ReaderFrom) gets a statusWriter, one allocation;
// any other one chi's middleware.WrapResponseWriter, which costs two and
// mirrors the method sets of more kinds of writer.
func recordStatus(w http.ResponseWriter, protoMajor int) statusRecorder {
	if protoMajor != 2 {
		_, fl := w.(http.Flusher)
		_, hj := w.(http.Hijacker)
		_, rf := w.(io.ReaderFrom)
		if fl && hj && rf {
			return &statusWriter{ResponseWriter: w}
		}
	}
	return middleware.NewWrapResponseWriter(w, protoMajor)
}

// statusWriter is chi's httpFancyWriter without its tee, discard and
// byte count: the same status kept, the same WriteHeader calls passed on
// (an informational status every time, any other the first time only),
// and the same methods.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		s.ResponseWriter.WriteHeader(code)
	} else if !s.wroteHeader {
		s.code = code
		s.wroteHeader = true
		s.ResponseWriter.WriteHeader(code)
	}
}

func (s *statusWriter) maybeWriteHeader() {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.maybeWriteHeader()
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Status() int { return s.code }

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Flush() {
	s.maybeWriteHeader()
	s.ResponseWriter.(http.Flusher).Flush()
}

func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return s.ResponseWriter.(http.Hijacker).Hijack()
}

func (s *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	s.maybeWriteHeader()
	return s.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
}
