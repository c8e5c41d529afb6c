package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/internal/strictjson"
	"github.com/neullabs/ringlet/provider"
)

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, api.ErrorAnswer{Error: api.ErrorBody{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal","message":"could not encode the response"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// wireRefusal is a provider request Ringlet refuses (a budget, a rate
// limit), answered in the wire format of the session's provider so that
// its agent shows the message and acts as on the provider's own error:
// OpenAI's shape for an OpenAI-format provider, Anthropic's for every
// other. Both carry error.ringlet ({"code":..., and what ringlet holds})
// and the header X-Ringlet-Error with that code.
type wireRefusal struct {
	code    string         // Ringlet's code: error.ringlet.code, X-Ringlet-Error
	ringlet map[string]any // the rest of error.ringlet
	message string
	header  map[string]string // more headers
	// Anthropic's status and error type; OpenAI's status, error type and
	// code.
	anthropicStatus int
	anthropicType   string
	openAIStatus    int
	openAIType      string
	openAICode      string
}

func writeWireRefusal(w http.ResponseWriter, format string, e wireRefusal) {
	ringlet := map[string]any{"code": e.code}
	for k, v := range e.ringlet {
		ringlet[k] = v
	}
	h := w.Header()
	h.Set("X-Ringlet-Error", e.code)
	for k, v := range e.header {
		h.Set(k, v)
	}
	if format == provider.FormatOpenAI {
		writeJSON(w, e.openAIStatus, map[string]any{
			"error": map[string]any{"message": e.message, "type": e.openAIType, "code": e.openAICode, "param": nil, "ringlet": ringlet}})
		return
	}
	writeJSON(w, e.anthropicStatus, map[string]any{"type": "error",
		"error": map[string]any{"type": e.anthropicType, "message": e.message, "ringlet": ringlet}})
}

// limitBody caps request bodies at max bytes: a declared Content-Length
// beyond it is refused at once with 413, and a body that grows past it
// while being read fails the read, which decodeJSON turns into 413. It also
// bounds the time to read the body, which the server cannot do for every
// route because streaming routes must not have a read deadline.
func limitBody(max int64, readTimeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than the %d-byte limit", max))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
				_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// decodeJSON reads one JSON value into v, refusing unknown fields,
// trailing data, and what two readers could read differently (a key twice
// in an object at any depth, or twice but for case, which encoding/json
// would match to one field): what is checked, audited or passed to a hook
// is exactly what acts. It writes the error response itself and reports
// whether the caller may go on.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	var body []byte
	var err error
	if r.Body != nil {
		body, err = io.ReadAll(r.Body)
	}
	if err == nil && json.Valid(body) {
		if serr := strictjson.Check(body); serr != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+serr.Error())
			return false
		}
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				err = errors.New("unexpected data after the JSON value")
			}
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than the %d-byte limit", tooBig.Limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "bad_request", "request body is empty; send a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
	}
	return false
}
