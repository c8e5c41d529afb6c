package mcp

import (
	"context"
	"errors"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// Outcome statuses: what came back from an upstream for a tool call.
const (
	// ResultOK: a result that is not marked isError.
	ResultOK = "ok"
	// ResultIsError: a result marked isError (the tool failed).
	ResultIsError = "is_error"
	// ResultRPCError: a JSON-RPC error answer (Code is its code when it
	// is one of the protocol's, else 0).
	ResultRPCError = "rpc_error"
	// ResultUpstream: no answer: the server failed, exited, closed its
	// connection or could not be reached.
	ResultUpstream = "upstream_error"
	// ResultTimeout: no answer within the server's timeout.
	ResultTimeout = "timeout"
	// ResultCanceled: the caller went away before the answer.
	ResultCanceled = "canceled"
)

// Outcome is what an upstream answered to a tool call that reached it:
// its size and status, never its content.
type Outcome struct {
	// Status is one of the Result constants; Code a JSON-RPC error's.
	Status string
	Code   int
	// Bytes is the size of the result's JSON as the client gets it
	// (after redaction); 0 when there was none.
	Bytes int
	// Duration is how long the upstream took.
	Duration time.Duration
}

// callError is a failed upstream call with its outcome.
type callError struct {
	status string
	code   int
	err    error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// failure classifies err, a tool call's failure as the client returned
// it (before requestFailed rewords it).
func failure(ctx context.Context, err error) (string, int) {
	switch {
	case context.Cause(ctx) == errCallTimeout || errors.Is(err, context.DeadlineExceeded):
		return ResultTimeout, 0
	case errors.Is(err, context.Canceled):
		return ResultCanceled, 0
	case isTransportError(err):
		return ResultUpstream, 0
	}
	for _, c := range []struct {
		err  error
		code int
	}{
		{mcpgo.ErrParseError, mcpgo.PARSE_ERROR}, {mcpgo.ErrInvalidRequest, mcpgo.INVALID_REQUEST},
		{mcpgo.ErrMethodNotFound, mcpgo.METHOD_NOT_FOUND}, {mcpgo.ErrInvalidParams, mcpgo.INVALID_PARAMS},
		{mcpgo.ErrInternalError, mcpgo.INTERNAL_ERROR}, {mcpgo.ErrRequestInterrupted, mcpgo.REQUEST_INTERRUPTED},
		{mcpgo.ErrResourceNotFound, mcpgo.RESOURCE_NOT_FOUND},
	} {
		if errors.Is(err, c.err) {
			return ResultRPCError, c.code
		}
	}
	// mcp-go keeps only the message of a code it does not know.
	return ResultRPCError, 0
}

// outcomeOf is the outcome of a call that ended with res, err.
func outcomeOf(res *mcpgo.CallToolResult, err error, took time.Duration) Outcome {
	o := Outcome{Status: ResultOK, Duration: took}
	var ce *callError
	switch {
	case errors.As(err, &ce):
		o.Status, o.Code = ce.status, ce.code
	case err != nil:
		// Failed before a request went out (the server did not start,
		// is not running, or refused by its judgement).
		o.Status = ResultUpstream
	case res != nil && res.IsError:
		o.Status = ResultIsError
	}
	return o
}
