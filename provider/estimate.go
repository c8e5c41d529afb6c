package provider

import "encoding/json"

// DefaultOutputCap is the output a request that names no output limit
// (max_tokens, max_completion_tokens, max_output_tokens) is assumed to
// reach at most, for budgets.
const DefaultOutputCap = 32_000

// bytesPerToken is the estimator's assumption: a token is at least 3
// bytes of a request body. Real tokenizers average about 4 bytes of
// English, code or JSON per token, so the estimate runs high (it is a
// reservation, corrected when the answer reports its usage); text of
// scripts with multi-byte letters (CJK: 3 bytes per character, often
// one token each) is near the bound.
const bytesPerToken = 3

// Estimate is the most a request may use, read from its body before it
// is forwarded: its input tokens estimated from the body's size (every
// byte of it counted, JSON syntax and all), and the output limit it names
// or DefaultOutputCap. Model is the model it names ("" for none).
type Estimate struct {
	Model  string
	Input  int64
	Output int64
}

// EstimateRequest estimates a request body. A request without a body (a
// GET of the model list) asks for no tokens.
func EstimateRequest(body []byte) Estimate {
	if len(body) == 0 {
		return Estimate{}
	}
	var v struct {
		Model               string `json:"model"`
		MaxTokens           *int64 `json:"max_tokens"`
		MaxCompletionTokens *int64 `json:"max_completion_tokens"`
		MaxOutputTokens     *int64 `json:"max_output_tokens"`
	}
	e := Estimate{Input: (int64(len(body)) + bytesPerToken - 1) / bytesPerToken, Output: DefaultOutputCap}
	if json.Unmarshal(body, &v) != nil {
		return e
	}
	e.Model = v.Model
	for _, n := range []*int64{v.MaxTokens, v.MaxCompletionTokens, v.MaxOutputTokens} {
		if n != nil && *n > 0 {
			e.Output = *n
			break
		}
	}
	return e
}
