package config

import (
	"strings"
	"testing"
)

func TestOTelKeys(t *testing.T) {
	for _, tt := range []struct {
		key, value string
		wantErr    string // "" for valid
	}{
		{"otel.endpoint", "http://127.0.0.1:4318", ""},
		{"otel.endpoint", "https://collector.example.com/otlp", ""},
		{"otel.endpoint", "127.0.0.1:4318", "want a URL"},
		{"otel.endpoint", "ftp://h:1", "scheme must be http or https"},
		{"otel.endpoint", "https://user:pw@h:4318", "may not carry a user or password"},
		{"otel.endpoint", "http://h:4318/?token=x", "query or fragment"},
		{"otel.endpoint", "http://", "want a URL"},
		{"otel.protocol", "grpc", ""},
		{"otel.protocol", "udp", "accepted values: http, grpc"},
		{"otel.headers", "Authorization=otel/collector", ""},
		{"otel.headers", "Authorization=otel/collector, X-Team=otel/team", ""},
		{"otel.headers", "Authorization=Bearer otel/collector", ""},
		{"otel.headers", "Authorization=Bearer abc", "want <provider>/<alias>"},
		{"otel.headers", "Authorization=Bearer  otel/c", "invalid provider name"},
		{"otel.headers", "Authorization", "want NAME=<provider>/<alias>"},
		{"otel.headers", "Bad Name=otel/x", "want NAME=<provider>/<alias>"},
		{"otel.headers", "A=otel/x,a=otel/y", "given twice"},
		{"otel.content", "full", ""},
		{"otel.content", "prompts", "accepted values: digests, full"},
	} {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			k, err := LookupKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			err = k.ValidateValue(tt.value)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("got %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
}

// TestOTelHeadersInClearText: headers (credentials) go to a collector
// elsewhere only over https.
func TestOTelHeadersInClearText(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		ok       bool
	}{
		{"http://127.0.0.1:4318", true},
		{"http://localhost:4318", true},
		{"https://collector.example.com", true},
		{"http://collector.example.com", false},
	} {
		c := &Config{OTel: OTelConfig{Endpoint: tt.endpoint, Headers: "Authorization=otel/c"}}
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok %v", tt.endpoint, err, tt.ok)
		}
	}
}
