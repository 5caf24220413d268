package api

import (
	"encoding/json"
	"net/http"
)

// apiError is the body of every error answer.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// requestError is a client error found while reading a request.
type requestError struct {
	status int
	apiError
}

func (e *requestError) Error() string { return e.Message }

func badRequest(code, field, msg string) *requestError {
	return &requestError{status: http.StatusBadRequest, apiError: apiError{Code: code, Field: field, Message: msg}}
}

// writeJSON answers the API's JSON. application/json with nosniff is never
// rendered as HTML, so "<" and "&" stay readable in messages instead of
// \u003c.
func writeJSON(w http.ResponseWriter, status int, v any) { encodeJSON(w, status, v, false) }

func encodeJSON(w http.ResponseWriter, status int, v any, escapeHTML bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg}})
}

func writeRequestError(w http.ResponseWriter, e *requestError) {
	if e.status == http.StatusRequestEntityTooLarge {
		// Do not read the rest of an oversized body.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, e.status, map[string]apiError{"error": e.apiError})
}
