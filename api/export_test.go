package api

import (
	"net/http"
	"slices"
)

// RoutedPaths lists every path and method the API routes, as "METHOD path"
// (the console's pages aside).
func RoutedPaths() []string {
	a := &API{Metrics: http.NotFoundHandler()}
	var out []string
	for _, r := range a.routes() {
		for m := range r.byMethod {
			out = append(out, m+" "+r.path)
		}
	}
	slices.Sort(out)
	return out
}
