package provider

import "net/http"

// The request headers the proxy passes on to a provider: those the
// format's clients send and its API reads, and nothing else. Every other
// header a client sends is dropped, whatever its name: credentials of any
// provider (Authorization, X-Api-Key, Anthropic-Api-Key, X-Goog-Api-Key,
// Api-Key, ...), cookies, forwarding and proxy headers, and names nobody
// has thought of yet. The proxy then adds the key in the provider's scheme.
//
// The lists come from what the official SDKs (Anthropic and OpenAI, via
// Stainless), Claude Code and the Codex CLI send (test/node pins the
// versions; TestSDKClients, TestClaudeCode and TestCodex in test/ check
// that what they send passes and nothing else does), and what the APIs
// document. Identifiers are passed, secrets never:
// OpenAI-Organization and OpenAI-Project name the organisation and
// project a request is billed to; they grant nothing the key does not
// already grant (a key outside them is refused by OpenAI), and a user key
// that belongs to several organisations needs them. Session and request
// ids (X-Claude-Code-Session-Id, Session-Id, X-Client-Request-Id, ...)
// let the provider group requests for caching and support.
var (
	commonRequestHeaders = []string{
		"Accept",
		"Content-Type",
		"Content-Encoding", // a client that compresses its request body
		"User-Agent",
		"Idempotency-Key",
		// Stainless SDK telemetry: language, runtime, retry count, timeout.
		"X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-OS", "X-Stainless-Package-Version",
		"X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Retry-Count",
		"X-Stainless-Timeout", "X-Stainless-Helper", "X-Stainless-Helper-Method",
	}
	anthropicRequestHeaders = []string{
		"Anthropic-Version",
		"Anthropic-Beta",
		"Anthropic-Dangerous-Direct-Browser-Access",
		"X-App",                    // Claude Code: "cli"
		"X-Claude-Code-Session-Id", // Claude Code
	}
	openaiRequestHeaders = []string{
		"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta",
		"X-Client-Request-Id",
		// Codex CLI.
		"Originator", "Version", "Session-Id", "Session_id", "Conversation_id", "Thread-Id",
		"X-Codex-Beta-Features", "X-Codex-Turn-Metadata", "X-Codex-Turn-State", "X-Codex-Window-Id",
		"X-OpenAI-Subagent",
		// OpenRouter's app attribution.
		"HTTP-Referer", "X-Title",
	}
	forwardedHeaders = map[string]map[string]bool{
		FormatAnthropic: headerSet(commonRequestHeaders, anthropicRequestHeaders),
		FormatOpenAI:    headerSet(commonRequestHeaders, openaiRequestHeaders),
	}
)

func headerSet(lists ...[]string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, name := range l {
			m[http.CanonicalHeaderKey(name)] = true
		}
	}
	return m
}

// ForwardRequestHeader reports whether the proxy passes a request header
// (its canonical name) on to a provider of format.
func ForwardRequestHeader(format, canonicalName string) bool {
	return forwardedHeaders[format][canonicalName]
}
