package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

const (
	// maxBody caps every request body (SPEC section 7).
	maxBody = 64 << 10
	// maxDepth caps JSON nesting; an order is three levels deep.
	maxDepth = 8
)

// readJSON reads a JSON object body strictly into v: the right content type,
// at most maxBody bytes, one object with no duplicate or unknown fields and
// nothing after it.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *requestError {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &requestError{status: http.StatusUnsupportedMediaType,
			apiError: apiError{Code: "unsupported_media_type", Message: "Content-Type must be application/json"}}
	}
	tooLarge := &requestError{status: http.StatusRequestEntityTooLarge,
		apiError: apiError{Code: "body_too_large", Message: fmt.Sprintf("body exceeds %d bytes", maxBody)}}
	if r.ContentLength > maxBody {
		return tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge
		}
		return badRequest("unreadable_body", "", "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("empty_body", "", "the request body is empty")
	}
	if rerr := checkJSON(body); rerr != nil {
		return rerr
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return badRequest("type_error", te.Field, fmt.Sprintf("field %q must be a %s", te.Field, kindName(te.Type.Kind().String())))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// encoding/json has no typed error for unknown fields.
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest("unknown_field", field, fmt.Sprintf("unknown field %q", field))
		default:
			return badRequest("invalid_json", "", "the body is not valid JSON")
		}
	}
	return nil
}

func kindName(k string) string {
	switch k {
	case "int64", "int":
		return "whole number"
	case "slice":
		return "list"
	case "struct":
		return "object"
	}
	return k
}

// checkJSON walks the body's tokens once: it must be a single JSON object,
// at most maxDepth deep, with lower-case keys, no key repeated in any object
// (encoding/json silently keeps the last one) and nothing after it.
func checkJSON(body []byte) *requestError {
	invalid := badRequest("invalid_json", "", "the body is not valid JSON")
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		expect bool // in an object: the next token is a key
	}
	var stack []*frame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 || first {
				return invalid
			}
			return nil
		}
		if err != nil {
			return invalid
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return badRequest("invalid_json", "", "the body must be a JSON object")
			}
		} else if len(stack) == 0 {
			return badRequest("invalid_json", "", "unexpected data after the JSON object")
		}
		first = false
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string)
			if key != strings.ToLower(key) {
				// encoding/json matches field names case-insensitively, so
				// "ITEMS" would merge into "items": every field of this API
				// is lower case, and only that spelling is accepted.
				return badRequest("unknown_field", key, fmt.Sprintf("unknown field %q (field names are lower case)", key))
			}
			if _, dup := top.keys[key]; dup {
				return badRequest("duplicate_field", key, fmt.Sprintf("field %q appears twice", key))
			}
			top.keys[key] = struct{}{}
			top.expect = false
			continue
		}
		if top != nil && top.object {
			top.expect = true // this token is a value; a key comes next
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= maxDepth {
					return badRequest("too_deep", "", fmt.Sprintf("JSON nesting deeper than %d", maxDepth))
				}
				stack = append(stack, &frame{object: d == '{', keys: map[string]struct{}{}, expect: d == '{'})
			case ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].expect = true
				}
			}
		}
	}
}
