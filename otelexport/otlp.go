package otelexport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"
)

// Protocols (otel.protocol).
const (
	ProtocolHTTP = "http"
	ProtocolGRPC = "grpc"
)

// retryFor bounds the retries of one export: past it the batch is
// dropped, so a collector that is down costs the worker this long per
// batch, and the queue takes the rest.
const retryFor = 5 * time.Second

// Collector says where and how to send: endpoint (http or https; with
// OTLP/HTTP its path is the base of /v1/traces and /v1/logs), protocol
// (ProtocolHTTP or ProtocolGRPC) and headers, whose values came from the
// credential store.
type Collector struct {
	Endpoint *url.URL
	Protocol string
	Headers  map[string]string
	Timeout  time.Duration
}

// NewOTLP builds the OTLP exporters of traces and logs for c. The
// address, headers, timeout, retries and transport security are set
// explicitly, so the OTEL_EXPORTER_OTLP_* variables of the daemon's
// environment change none of them: an https endpoint is TLS with the
// system's roots whatever OTEL_EXPORTER_OTLP_INSECURE, _ENDPOINT or
// _CERTIFICATE say (only _COMPRESSION is still read).
func NewOTLP(ctx context.Context, c Collector) (sdktrace.SpanExporter, sdklog.Exporter, error) {
	if c.Endpoint == nil {
		return nil, nil, errors.New("otel export: no endpoint")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultExportTimeout
	}
	insecure := c.Endpoint.Scheme == "http"
	switch c.Protocol {
	case ProtocolHTTP, "":
		base := strings.TrimSuffix(c.Endpoint.Path, "/")
		to := func(path string) string {
			u := *c.Endpoint
			u.Path = base + path
			return u.String()
		}
		retryT := otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: retryFor}
		topts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(to("/v1/traces")), otlptracehttp.WithHeaders(c.Headers),
			otlptracehttp.WithTimeout(c.Timeout), otlptracehttp.WithRetry(retryT)}
		lopts := []otlploghttp.Option{otlploghttp.WithEndpointURL(to("/v1/logs")), otlploghttp.WithHeaders(c.Headers),
			otlploghttp.WithTimeout(c.Timeout), otlploghttp.WithRetry(otlploghttp.RetryConfig(retryT))}
		if insecure {
			topts = append(topts, otlptracehttp.WithInsecure())
			lopts = append(lopts, otlploghttp.WithInsecure())
		} else {
			topts = append(topts, otlptracehttp.WithTLSClientConfig(systemTLS()))
			lopts = append(lopts, otlploghttp.WithTLSClientConfig(systemTLS()))
		}
		spans, err := otlptracehttp.New(ctx, topts...)
		if err != nil {
			return nil, nil, fmt.Errorf("otel trace exporter: %w", err)
		}
		logs, err := otlploghttp.New(ctx, lopts...)
		if err != nil {
			return nil, nil, fmt.Errorf("otel log exporter: %w", err)
		}
		return spans, logs, nil
	case ProtocolGRPC:
		retryT := otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: retryFor}
		topts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.Endpoint.Host), otlptracegrpc.WithHeaders(c.Headers),
			otlptracegrpc.WithTimeout(c.Timeout), otlptracegrpc.WithRetry(retryT)}
		lopts := []otlploggrpc.Option{otlploggrpc.WithEndpoint(c.Endpoint.Host), otlploggrpc.WithHeaders(c.Headers),
			otlploggrpc.WithTimeout(c.Timeout), otlploggrpc.WithRetry(otlploggrpc.RetryConfig(retryT))}
		if insecure {
			topts = append(topts, otlptracegrpc.WithInsecure())
			lopts = append(lopts, otlploggrpc.WithInsecure())
		} else {
			// WithEndpoint alone keeps the insecure flag the environment
			// set (OTEL_EXPORTER_OTLP_INSECURE, or an http:// in
			// OTEL_EXPORTER_OTLP_ENDPOINT): the header credential would go
			// out in clear text. TLS is said here.
			topts = append(topts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(systemTLS())))
			lopts = append(lopts, otlploggrpc.WithTLSCredentials(credentials.NewTLS(systemTLS())))
		}
		spans, err := otlptracegrpc.New(ctx, topts...)
		if err != nil {
			return nil, nil, fmt.Errorf("otel trace exporter: %w", err)
		}
		logs, err := otlploggrpc.New(ctx, lopts...)
		if err != nil {
			return nil, nil, fmt.Errorf("otel log exporter: %w", err)
		}
		return spans, logs, nil
	}
	return nil, nil, fmt.Errorf("otel export: unknown protocol %q", c.Protocol)
}

// systemTLS is TLS 1.2 or later with the system's roots (no
// OTEL_EXPORTER_OTLP_CERTIFICATE or client certificate from the
// environment).
func systemTLS() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
