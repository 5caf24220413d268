package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// ProtectAdmin makes the admin actions (retry, stock, dead-letter replay)
// require "Authorization: Bearer <token>"; an empty token leaves them open.
// Only the token's digest is kept, so that nothing in the API can log it.
func (a *API) ProtectAdmin(token string) {
	if token == "" {
		a.adminDigest = nil
		return
	}
	d := sha256.Sum256([]byte(token))
	a.adminDigest = &d
}

// admin wraps an admin action: a browser request sent from another site's
// page gets 403, and with a token configured a request without the right
// bearer token gets 401, before anything is read or written.
func (a *API) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Without ADMIN_TOKEN the actions are open, so any page a browser
		// visits could post a form to them (a cross-site request forgery):
		// browsers say where a request comes from, and only the console's
		// own pages (same-origin) or a person typing the URL (none) act.
		// Clients that are not browsers send no Sec-Fetch-Site.
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			writeError(w, http.StatusForbidden, "cross_site",
				"admin actions are refused from another site's page (Sec-Fetch-Site: "+site+")")
			return
		}
		if a.adminDigest == nil {
			next(w, r)
			return
		}
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamsaga admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized",
				"this admin action needs the header Authorization: Bearer <ADMIN_TOKEN>")
			return
		}
		// Digests have one length whatever was sent, so the comparison
		// takes the same time for any token.
		d := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(d[:], a.adminDigest[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamsaga admin", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid_token", "the bearer token is not the admin token")
			return
		}
		next(w, r)
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// (the scheme is case-insensitive, RFC 9110 section 11.1).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
