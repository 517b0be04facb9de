package nodeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// The kubelet's mapping of paths to the node's subresources (fine-grained
// first), the verb from the method.
func TestKubeletAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice"}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/pods", "get pods,proxy"},
		{"GET", "/healthz", "get healthz,proxy"},
		{"GET", "/stats/summary", "get stats"},
		{"GET", "/metrics", "get metrics"},
		{"GET", "/metrics/cadvisor", "get metrics"},
		{"GET", "/logs/", "get log"},
		{"GET", "/containerLogs/ns/p/c", "get proxy"},
		{"POST", "/exec/ns/p/c", "create proxy"},
		{"GET", "/portForward/ns/p", "get proxy"},
		{"GET", "/podsx", "get proxy"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		var subs []string
		for _, a := range KubeletAttributes(u, r, "n1") {
			if a.GetResource() != "nodes" || a.GetName() != "n1" || !a.IsResourceRequest() || a.GetUser().GetName() != "alice" {
				t.Fatalf("%s %s: %+v", tc.method, tc.path, a)
			}
			subs = append(subs, a.GetSubresource())
		}
		if got := a0verb(KubeletAttributes(u, r, "n1")) + " " + strings.Join(subs, ","); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func a0verb(as []authorizer.Attributes) string { return as[0].GetVerb() }

type authn map[string]string // bearer token -> user

func (a authn) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "broken" {
		return nil, false, errors.New("TokenReview failed")
	}
	name, ok := a[tok]
	if !ok {
		return nil, false, nil
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
}

// authz allows user:subresource pairs; "error" fails.
type authz map[string]bool

func (a authz) Authorize(_ context.Context, at authorizer.Attributes) (authorizer.Decision, string, error) {
	if at.GetUser().GetName() == "error" {
		return authorizer.DecisionNoOpinion, "", errors.New("SubjectAccessReview failed")
	}
	if a[at.GetUser().GetName()+":"+at.GetSubresource()] {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// The auth filter: 401 without a user, 403 naming the user and what was
// asked, 500 when authz fails, the handler when one subresource is allowed.
func TestKubeletAuth(t *testing.T) {
	s := New(&source{}, nil)
	h := s.Kubelet(authn{"a": "admin", "p": "podreader", "n": "nobody", "e": "error"},
		authz{"admin:proxy": true, "podreader:pods": true})
	for _, tc := range []struct{ token, path, want string }{
		{"", "/healthz", "401 Unauthorized"},
		{"broken", "/healthz", "401 Unauthorized"},
		{"a", "/healthz", "200 ok"},
		{"p", "/pods", "200 {"},
		{"p", "/healthz", "403 Forbidden (user=podreader, verb=get, resource=nodes, subresource(s)=[healthz proxy])"},
		{"n", "/stats/summary", "403 Forbidden (user=nobody, verb=get, resource=nodes, subresource(s)=[stats])"},
		{"e", "/pods", "500 Authorization error (user=error, verb=get, resource=nodes, subresource=pods): SubjectAccessReview failed"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		h.ServeHTTP(rec, req)
		if got := fmt.Sprintf("%d %s", rec.Code, rec.Body); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q %s: %q, want %q...", tc.token, tc.path, got, tc.want)
		}
	}
}

// /containerLogs' query as the kubelet reads it; bad values name the
// option.
func TestParseLogOptions(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for q, want := range map[string]string{
		"":                                      "prev=false follow=false ts=false tail=- since=0001-01-01T00:00:00Z limit=0",
		"follow=true&previous=1&timestamps=yes": "prev=true follow=true ts=true tail=- since=0001-01-01T00:00:00Z limit=0",
		"follow=false&previous=0":               "prev=false follow=false ts=false tail=- since=0001-01-01T00:00:00Z limit=0",
		"tailLines=3&limitBytes=10":             "prev=false follow=false ts=false tail=3 since=0001-01-01T00:00:00Z limit=10",
		"tail=7":                                "prev=false follow=false ts=false tail=7 since=0001-01-01T00:00:00Z limit=0",
		"tail=all":                              "prev=false follow=false ts=false tail=- since=0001-01-01T00:00:00Z limit=0",
		"sinceSeconds=60":                       "prev=false follow=false ts=false tail=- since=2026-12-06T11:59:00Z limit=0",
		"sinceTime=2026-12-06T10:00:00Z":        "prev=false follow=false ts=false tail=- since=2026-12-06T10:00:00Z limit=0",
		"tailLines=-1":                          `error tailLines: want a whole number >= 0, got "-1"`,
		"limitBytes=0":                          `error limitBytes: want a whole number >= 1, got "0"`,
		"sinceSeconds=0":                        `error sinceSeconds: want a whole number >= 1, got "0"`,
		"sinceSeconds=5&sinceTime=2026-12-06T10:00:00Z": "error sinceSeconds and sinceTime: give at most one",
		"sinceTime=yesterday":                           `error sinceTime: want an RFC 3339 time, got "yesterday"`,
	} {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		o, limit, err := ParseLogOptions(v, now)
		got := ""
		if err != nil {
			got = "error " + err.Error()
		} else {
			tail := "-"
			if o.TailLines != nil {
				tail = fmt.Sprint(*o.TailLines)
			}
			got = fmt.Sprintf("prev=%t follow=%t ts=%t tail=%s since=%s limit=%d", o.Previous, o.Follow, o.Timestamps, tail, o.Since.UTC().Format(time.RFC3339), limit)
		}
		if got != want {
			t.Errorf("%q: %s, want %s", q, got, want)
		}
	}
}
