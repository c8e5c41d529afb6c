package otelexport

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestHTTPSStaysTLSWhateverTheEnvironment: an https endpoint gets a TLS
// ClientHello first, over both protocols, even when the daemon's
// environment says OTEL_EXPORTER_OTLP_INSECURE or names an http://
// endpoint: the header credential never goes out in clear text.
func TestHTTPSStaysTLSWhateverTheEnvironment(t *testing.T) {
	for _, tc := range []struct{ proto, name, value string }{
		{ProtocolGRPC, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"},
		{ProtocolGRPC, "OTEL_EXPORTER_OTLP_INSECURE", "true"},
		{ProtocolGRPC, "OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"},
		{ProtocolHTTP, "OTEL_EXPORTER_OTLP_INSECURE", "true"},
		{ProtocolHTTP, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"},
	} {
		t.Run(tc.proto+" "+tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			first := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a test bound, not a wait
				b := make([]byte, 64)
				n, _ := c.Read(b)
				first <- b[:n]
			}()
			u, _ := url.Parse("https://" + ln.Addr().String())
			spans, logs, err := NewOTLP(t.Context(), Collector{Endpoint: u, Protocol: tc.proto,
				Headers: map[string]string{"authorization": "Bearer canary-otlp-header"}, Timeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = logs.Shutdown(context.Background()) }() // nothing was sent on it
			_, sp := sdktrace.NewTracerProvider().Tracer("t").Start(t.Context(), "s")
			sp.End()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _ = spans.ExportSpans(ctx, []sdktrace.ReadOnlySpan{sp.(sdktrace.ReadOnlySpan)}) }() // fails: the listener speaks no TLS
			select {
			case b := <-first:
				if len(b) == 0 || b[0] != 0x16 { // a TLS handshake record
					t.Errorf("the https endpoint's first bytes: %q, want a TLS ClientHello", b)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the exporter never connected")
			}
		})
	}
}
