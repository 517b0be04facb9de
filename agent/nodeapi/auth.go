package nodeapi

import (
	"crypto/subtle"
	"net/http"
)

// RequireToken lets through only requests carrying "Authorization: Bearer
// <token>"; others get 401 (the node API on TCP). An empty token lets no
// one in.
func RequireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="k8sm node API"`)
			http.Error(w, "401 Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
