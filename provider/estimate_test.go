package provider

import "testing"

func TestEstimateRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		want Estimate
	}{
		{"no body", "", Estimate{}},
		{"anthropic", `{"model":"m","max_tokens":100}`, Estimate{Model: "m", Input: 10, Output: 100}},
		{"chat", `{"model":"m","max_completion_tokens":7}`, Estimate{Model: "m", Input: 13, Output: 7}},
		{"responses", `{"model":"m","max_output_tokens":9}`, Estimate{Model: "m", Input: 12, Output: 9}},
		{"no limit", `{"model":"m"}`, Estimate{Model: "m", Input: 5, Output: DefaultOutputCap}},
		{"zero limit", `{"max_tokens":0}`, Estimate{Input: 6, Output: DefaultOutputCap}},
		{"not JSON", `xyz`, Estimate{Input: 1, Output: DefaultOutputCap}},
	} {
		if got := EstimateRequest([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func FuzzEstimateRequest(f *testing.F) {
	for _, s := range []string{"", `{"max_tokens":1}`, `{"max_output_tokens":-5}`, `{"model":1}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := EstimateRequest(body)
		if e.Input < 0 || e.Output < 0 || len(body) > 0 && (e.Input == 0 || e.Output == 0) {
			t.Fatalf("EstimateRequest(%q) = %+v: want a positive estimate for a body", body, e)
		}
	})
}
