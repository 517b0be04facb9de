package nodeapi

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
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

// withAuth is the kubelet's auth filter: the request's user from authn
// (401 "Unauthorized" when there is none), then the first of
// KubeletAttributes that authz allows; 403 naming the user, verb and
// subresources when none is allowed, 500 when authz fails.
func withAuth(nodeName func() string, authn authenticator.Request, authz authorizer.Authorizer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := authn.AuthenticateRequest(r)
		if err != nil || !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := KubeletAttributes(resp.User, r, nodeName())
		var subresources []string
		for _, a := range attrs {
			d, _, err := authz.Authorize(r.Context(), a)
			if err != nil {
				http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s): %v",
					a.GetUser().GetName(), a.GetVerb(), a.GetResource(), a.GetSubresource(), err), http.StatusInternalServerError)
				return
			}
			if d == authorizer.DecisionAllow {
				h.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), resp.User)))
				return
			}
			subresources = append(subresources, a.GetSubresource())
		}
		http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource(s)=%v)",
			resp.User.GetName(), attrs[0].GetVerb(), subresources), http.StatusForbidden)
	})
}

// KubeletAttributes are what a request to the kubelet API asks of the
// node, in the order the kubelet asks them (its NodeAuthorizerAttributesGetter
// with KubeletFineGrainedAuthz, on by default since 1.33): the verb from
// the method, resource nodes named nodeName; /pods, /healthz, /configz
// first as their own subresource, then stats (/stats/), metrics
// (/metrics...), log (/logs/), checkpoint, statusz, configz (/flagz) or,
// for everything else (exec, attach, portForward, run, containerLogs,
// pods, healthz), proxy.
func KubeletAttributes(u user.Info, r *http.Request, nodeName string) []authorizer.Attributes {
	verb := map[string]string{http.MethodPost: "create", http.MethodGet: "get", http.MethodPut: "update",
		http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	attr := func(sub string) authorizer.Attributes {
		return authorizer.AttributesRecord{User: u, Verb: verb, APIVersion: "v1", Resource: "nodes", Name: nodeName,
			Subresource: sub, ResourceRequest: true, Path: r.URL.Path}
	}
	p := r.URL.Path
	under := func(base string) bool {
		base = strings.TrimSuffix(base, "/")
		return p == base || strings.HasPrefix(p, base+"/")
	}
	var out []authorizer.Attributes
	for _, fg := range []struct{ path, sub string }{{"/pods", "pods"}, {"/healthz", "healthz"}, {"/configz", "configz"}, {"/runningpods/", "pods"}} {
		if under(fg.path) {
			out = append(out, attr(fg.sub))
		}
	}
	sub := "proxy"
	for _, c := range []struct{ path, sub string }{{"/stats/", "stats"}, {"/metrics", "metrics"}, {"/logs/", "log"},
		{"/checkpoint/", "checkpoint"}, {"/statusz", "statusz"}, {"/flagz", "configz"}} {
		if under(c.path) {
			sub = c.sub
			break
		}
	}
	return append(out, attr(sub))
}
