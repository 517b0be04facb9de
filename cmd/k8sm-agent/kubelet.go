package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"

	"github.com/k8sm/k8sm/agent/nodeapi"
)

// kubeletOptions are the kubelet API server's flags, named as the
// kubelet's.
type kubeletOptions struct {
	address      string
	port         int
	certFile     string
	keyFile      string
	clientCAFile string
}

func (o *kubeletOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.address, "kubelet-address", "",
		"address the kubelet API listens on (default the --host-ip; 0.0.0.0 for every address)")
	f.IntVar(&o.port, "kubelet-port", 10250,
		"port of the kubelet API (HTTPS, with --kubeconfig) on the --host-ip: logs, exec, attach, port-forward for the API server; 0 picks a free port, which the Node advertises in status.daemonEndpoints")
	f.StringVar(&o.certFile, "tls-cert-file", "",
		"serving certificate of the kubelet API (with --tls-private-key-file); without it a self-signed one is made for the node's name and IP")
	f.StringVar(&o.keyFile, "tls-private-key-file", "", "private key of --tls-cert-file")
	f.StringVar(&o.clientCAFile, "client-ca-file", "",
		"CA bundle that signs the client certificates the kubelet API accepts (the API server's --kubelet-client-certificate); without it only bearer tokens (TokenReview) authenticate")
}

func (o *kubeletOptions) validate() error {
	if o.port < 0 || o.port > 65535 {
		return fmt.Errorf("--kubelet-port: %d is not a port (0-65535)", o.port)
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return errors.New("--tls-cert-file and --tls-private-key-file go together")
	}
	return nil
}

// authWebhookBackoff is the apiserver's default for its webhook retries
// (DefaultAuthWebhookRetryBackoff), which the kubelet uses too.
var authWebhookBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

// startKubelet serves the kubelet API of api on --kubelet-address (default
// ip):--kubelet-port until
// ctx ends, with the kubelet's delegated authentication (client
// certificates of --client-ca-file; bearer tokens through TokenReview;
// anonymous refused) and authorization (SubjectAccessReview). It returns
// the port it listens on.
func startKubelet(ctx context.Context, o *kubeletOptions, cs kubernetes.Interface, api *nodeapi.Server, nodeName, ip string, log *slog.Logger) (int32, error) {
	authnCfg := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		CacheTTL:                 2 * time.Minute,
		TokenAccessReviewClient:  cs.AuthenticationV1(),
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      &authWebhookBackoff,
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.clientCAFile != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca-bundle", o.clientCAFile)
		if err != nil {
			return 0, fmt.Errorf("--client-ca-file: %w", err)
		}
		authnCfg.ClientCertificateCAContentProvider = ca
		go ca.Run(ctx, 1)
		// The authenticator checks the certificate against the CA; TLS
		// only asks for one.
		tlsCfg.ClientAuth = tls.RequestClientCert
	}
	authn, _, err := authnCfg.New()
	if err != nil {
		return 0, fmt.Errorf("kubelet API authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: cs.AuthorizationV1(),
		AllowCacheTTL:             5 * time.Minute,
		DenyCacheTTL:              30 * time.Second,
		WebhookRetryBackoff:       &authWebhookBackoff,
	}.New()
	if err != nil {
		return 0, fmt.Errorf("kubelet API authorization: %w", err)
	}
	cert, err := servingCert(o, nodeName, ip)
	if err != nil {
		return 0, err
	}
	tlsCfg.Certificates = []tls.Certificate{cert}
	addr := o.address
	if addr == "" {
		addr = ip
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(o.port)))
	if err != nil {
		return 0, fmt.Errorf("kubelet API (--kubelet-address, --kubelet-port): %w", err)
	}
	// As the kubelet's server: no read or write timeout (logs -f, exec and
	// port-forward streams last), an idle timeout between requests.
	srv := &http.Server{Handler: api.Kubelet(authn, authz), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 90 * time.Second, MaxHeaderBytes: 1 << 20, TLSConfig: tlsCfg}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("kubelet API server ended", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	log.Info("kubelet API listening", "address", ln.Addr().String(), "client_ca", o.clientCAFile, "self_signed", o.certFile == "")
	return port, nil
}

// servingCert is --tls-cert-file's or, without one, a self-signed
// certificate for the node's name and IP (the kubelet's behaviour; the API
// server does not verify it unless it has --kubelet-certificate-authority).
func servingCert(o *kubeletOptions, nodeName, ip string) (tls.Certificate, error) {
	if o.certFile != "" {
		c, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return c, fmt.Errorf("--tls-cert-file/--tls-private-key-file: %w", err)
		}
		return c, nil
	}
	var ips []net.IP
	if p := net.ParseIP(ip); p != nil {
		ips = append(ips, p)
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(nodeName, ips, []string{nodeName})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed kubelet serving certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
