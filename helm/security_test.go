// Checks of the chart's TLS and bearer-token wiring in rendered manifests:
// every certificate, CA and token file a binary is told to read is a key
// of the right Secret, mounted as a directory, and a pod gets no key it
// does not read.

package helm

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/shard"
)

// listenerTLS is tls.router or tls.blockbuilder of the values.
type listenerTLS struct {
	Enabled        bool      `json:"enabled"`
	ExistingSecret string    `json:"existingSecret"`
	CA             secretKey `json:"ca"`
	ClientCA       struct {
		Enabled bool `json:"enabled"`
		secretKey
	} `json:"clientCA"`
}

// secretKey is a {existingSecret, key} pair of the values.
type secretKey struct {
	ExistingSecret string `json:"existingSecret"`
	Key            string `json:"key"`
}

// caSecret is the Secret and key of the CA that verifies the listener:
// its own Secret's ca.crt unless the values name another.
func (l listenerTLS) caSecret() (string, string) {
	return cmp.Or(l.CA.ExistingSecret, l.ExistingSecret), cmp.Or(l.CA.Key, "ca.crt")
}

// clientCASecret is the Secret and key of the CA client certificates must
// be signed by.
func (l listenerTLS) clientCASecret() (string, string) {
	return cmp.Or(l.ClientCA.ExistingSecret, l.ExistingSecret), cmp.Or(l.ClientCA.Key, "ca.crt")
}

// secretFile is where a file a container reads comes from.
type secretFile struct{ secret, key string }

// secretFileOf resolves the file named by the container's variable env to
// the Secret and key the kubelet writes there. ok is false when env is not
// set; a file on anything but a Secret volume fails the test.
func secretFileOf(t *testing.T, w workload, c *container, env string) (f secretFile, ok bool) {
	t.Helper()
	path, set := c.env(env)
	if !set {
		return secretFile{}, false
	}
	mount, vol := mountOf(t, w, c, path)
	if mount.SubPath != "" {
		t.Errorf("%s: %s is mounted with subPath %q: the kubelet never renews a subPath mount", w.Metadata.Name, env, mount.SubPath)
	}
	if vol == nil || vol.Secret == nil {
		t.Fatalf("%s: %s=%s is not on a Secret volume", w.Metadata.Name, env, path)
	}
	rel := strings.TrimPrefix(path, mount.MountPath+"/")
	if len(vol.Secret.Items) == 0 {
		return secretFile{vol.Secret.SecretName, rel}, true
	}
	for _, it := range vol.Secret.Items {
		if it.Path == rel {
			return secretFile{vol.Secret.SecretName, it.Key}, true
		}
	}
	t.Fatalf("%s: %s=%s: volume %s projects no file %s (items %+v)", w.Metadata.Name, env, path, vol.Name, rel, vol.Secret.Items)
	return secretFile{}, false
}

// expectSecretFile checks that env names the key of secret, or is unset
// when secret is "".
func expectSecretFile(t *testing.T, w workload, c *container, env, secret, key string) {
	t.Helper()
	got, set := secretFileOf(t, w, c, env)
	switch {
	case secret == "" && set:
		t.Errorf("%s: %s is set (%+v), but the values ask for no such file", w.Metadata.Name, env, got)
	case secret != "" && !set:
		t.Errorf("%s: %s is not set; want key %s of Secret %s", w.Metadata.Name, env, key, secret)
	case secret != "" && got != (secretFile{secret, key}):
		t.Errorf("%s: %s reads key %s of Secret %s, want key %s of Secret %s", w.Metadata.Name, env, got.key, got.secret, key, secret)
	}
}

// checkSecurity: the TLS and token files of routers and block builders.
func checkSecurity(t *testing.T, m manifest, v values) {
	t.Helper()
	var d, s workload
	m.find(t, "Deployment", "-router").decode(t, &d)
	m.find(t, "StatefulSet", "-blockbuilder").decode(t, &s)
	router, bb := onlyContainer(t, d), onlyContainer(t, s)

	checkListenerFiles(t, d, router, v.TLS.Router)
	checkListenerFiles(t, s, bb, v.TLS.Blockbuilder)

	tokens := v.Auth.BearerTokens
	expectSecretFile(t, d, router, "STRATA_BEARER_TOKEN_FILE", tokens.ExistingSecret, cmp.Or(tokens.Key, "tokens"))

	// Towards the block builders: HTTPS exactly when they serve it,
	// verified with their CA, with the routers' client certificate.
	bbTLS := v.TLS.Blockbuilder
	if got, _ := router.env("STRATA_FORWARD_TLS_ENABLED"); (got == "true") != bbTLS.Enabled {
		t.Errorf("router STRATA_FORWARD_TLS_ENABLED = %q with tls.blockbuilder.enabled %v: the routers must speak what the block builders serve", got, bbTLS.Enabled)
	}
	caSecret, caKey := "", ""
	if bbTLS.Enabled {
		caSecret, caKey = bbTLS.caSecret()
	}
	expectSecretFile(t, d, router, "STRATA_FORWARD_TLS_CA_FILE", caSecret, caKey)
	if got, _ := router.env("STRATA_FORWARD_TLS_SERVER_NAME"); got != v.TLS.Forward.ServerName {
		t.Errorf("router STRATA_FORWARD_TLS_SERVER_NAME = %q, want %q", got, v.TLS.Forward.ServerName)
	}
	expectSecretFile(t, d, router, "STRATA_FORWARD_TLS_CERT_FILE", v.TLS.Forward.ClientCertSecret, "tls.crt")
	expectSecretFile(t, d, router, "STRATA_FORWARD_TLS_KEY_FILE", v.TLS.Forward.ClientCertSecret, "tls.key")
	if _, set := router.env("STRATA_FORWARD_TLS_INSECURE_SKIP_VERIFY"); set {
		t.Error("the routers must verify the block builders: STRATA_FORWARD_TLS_INSECURE_SKIP_VERIFY is set")
	}

	// One token, sent by the routers and asked for by the block builders.
	fwd := v.Auth.ForwardToken
	expectSecretFile(t, d, router, "STRATA_FORWARD_BEARER_TOKEN_FILE", fwd.ExistingSecret, cmp.Or(fwd.Key, "token"))
	expectSecretFile(t, s, bb, "STRATA_BEARER_TOKEN_FILE", fwd.ExistingSecret, cmp.Or(fwd.Key, "token"))

	// A pod holds no key of a Secret it does not read: the routers see
	// the block builders' CA, never their private key.
	for _, w := range []workload{d, s} {
		c := onlyContainer(t, w)
		read := map[secretFile]bool{}
		for _, e := range c.Env {
			if !strings.HasSuffix(e.Name, "_FILE") || e.ValueFrom != nil {
				continue
			}
			if _, vol := mountOf(t, w, c, e.Value); vol != nil && vol.Secret != nil {
				f, _ := secretFileOf(t, w, c, e.Name)
				read[f] = true
			}
		}
		for _, vol := range w.Spec.Template.Spec.Volumes {
			if vol.Secret == nil || vol.Name == "objstore" {
				continue
			}
			if len(vol.Secret.Items) == 0 {
				t.Errorf("%s: volume %s mounts every key of Secret %s; project the keys it reads", w.Metadata.Name, vol.Name, vol.Secret.SecretName)
			}
			for _, it := range vol.Secret.Items {
				if !read[secretFile{vol.Secret.SecretName, it.Key}] {
					t.Errorf("%s: volume %s projects key %s of Secret %s, which no variable reads", w.Metadata.Name, vol.Name, it.Key, vol.Secret.SecretName)
				}
			}
		}
	}
}

// checkListenerFiles: a listener's certificate, key and client CA.
func checkListenerFiles(t *testing.T, w workload, c *container, l listenerTLS) {
	t.Helper()
	secret := ""
	if l.Enabled {
		secret = l.ExistingSecret
	}
	expectSecretFile(t, w, c, "STRATA_TLS_CERT_FILE", secret, "tls.crt")
	expectSecretFile(t, w, c, "STRATA_TLS_KEY_FILE", secret, "tls.key")
	caSecret, caKey := "", ""
	if l.Enabled && l.ClientCA.Enabled {
		caSecret, caKey = l.clientCASecret()
	}
	expectSecretFile(t, w, c, "STRATA_TLS_CLIENT_CA_FILE", caSecret, caKey)
}

// checkServiceMonitorTLS: each component is scraped over HTTPS exactly
// when it serves it, verified with its CA under a name its certificate
// carries, and with a client certificate when it asks for one.
func checkServiceMonitorTLS(t *testing.T, m manifest, v values, namespace string) {
	t.Helper()
	o := m.byName("ServiceMonitor", "strata")
	if o == nil {
		return
	}
	var sm serviceMonitor
	o.decode(t, &sm)
	var s workload
	m.find(t, "StatefulSet", "-blockbuilder").decode(t, &s)
	routerSvc := m.find(t, "Service", "-router")
	names := map[string]string{
		"router":       fmt.Sprintf("%s.%s.svc.cluster.local", routerSvc.Metadata.Name, namespace),
		"blockbuilder": cmp.Or(v.TLS.Forward.ServerName, strings.Split(podAddresses(s, namespace, "cluster.local")[0], ":")[0]),
	}
	for _, so := range m.ofKind("Service") {
		var svc service
		so.decode(t, &svc)
		component := svc.Metadata.Labels["app.kubernetes.io/component"]
		l := map[string]listenerTLS{"router": v.TLS.Router, "blockbuilder": v.TLS.Blockbuilder}[component]
		for i, ep := range sm.Spec.Endpoints {
			if !keptBy(t, ep.Relabelings, svc) {
				continue
			}
			if (ep.Scheme == "https") != l.Enabled || (ep.TLSConfig != nil) != l.Enabled {
				t.Errorf("%s endpoint %d scrapes %s with scheme %q and tlsConfig %+v; its TLS is %v", o, i, so, ep.Scheme, ep.TLSConfig, l.Enabled)
				continue
			}
			if !l.Enabled {
				continue
			}
			tc := ep.TLSConfig
			caSecret, caKey := l.caSecret()
			if tc.CA.Secret == nil || *tc.CA.Secret != (keyRef{caSecret, caKey}) {
				t.Errorf("%s endpoint %d verifies %s with CA %+v, want key %s of Secret %s", o, i, component, tc.CA.Secret, caKey, caSecret)
			}
			if tc.ServerName != names[component] || tc.InsecureSkipVerify {
				t.Errorf("%s endpoint %d verifies %s as %q (insecureSkipVerify %v), want %q", o, i, component, tc.ServerName, tc.InsecureSkipVerify, names[component])
			}
			want := (*keyRef)(nil)
			if l.ClientCA.Enabled {
				want = &keyRef{v.ServiceMonitor.ClientCertSecret, "tls.crt"}
			}
			if fmt.Sprint(tc.Cert.Secret) != fmt.Sprint(want) || (want == nil) != (tc.KeySecret == nil) ||
				(want != nil && *tc.KeySecret != (keyRef{v.ServiceMonitor.ClientCertSecret, "tls.key"})) {
				t.Errorf("%s endpoint %d presents cert %+v key %+v to %s, want the client certificate of Secret %q when it asks for one (%v)", o, i, tc.Cert.Secret, tc.KeySecret, component, v.ServiceMonitor.ClientCertSecret, l.ClientCA.Enabled)
			}
		}
	}
}

// keptBy applies an endpoint's relabelings to a service's discovery
// labels and tells whether its targets are kept. Only keep and drop
// actions are understood, the ones a ServiceMonitor selects with.
func keptBy(t *testing.T, rules []relabelConfig, s service) bool {
	t.Helper()
	meta := map[string]string{"__meta_kubernetes_service_name": s.Metadata.Name}
	notLabel := regexp.MustCompile(`[^a-zA-Z0-9_]`)
	for k, v := range s.Metadata.Labels {
		meta["__meta_kubernetes_service_label_"+notLabel.ReplaceAllString(k, "_")] = v
	}
	for _, r := range rules {
		var vals []string
		for _, l := range r.SourceLabels {
			vals = append(vals, meta[l])
		}
		re := regexp.MustCompile("^(?:" + cmp.Or(r.Regex, "(.*)") + ")$")
		match := re.MatchString(strings.Join(vals, cmp.Or(r.Separator, ";")))
		switch strings.ToLower(r.Action) {
		case "keep":
			if !match {
				return false
			}
		case "drop":
			if match {
				return false
			}
		default:
			t.Fatalf("relabeling action %q is not understood by this test", r.Action)
		}
	}
	return true
}

// The block builders' certificate: the one name the README and the
// install notes ask for, a wildcard over the headless service, is valid
// for every address of the generated hashring (which the routers verify)
// and for the name the ServiceMonitor verifies, whatever the number of
// block builders; and it is not valid for another release's.
func TestBlockBuilderCertificateName(t *testing.T) {
	h := newHelm(t)
	for _, replicas := range []int{3, 12} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			m, _ := render(t, h, "strata", "monitoring", []string{"testdata/values-tls.yaml"}, "--set", fmt.Sprintf("blockbuilder.replicas=%d", replicas))
			var s workload
			m.find(t, "StatefulSet", "-blockbuilder").decode(t, &s)
			wildcard := fmt.Sprintf("*.%s.monitoring.svc.cluster.local", s.Spec.ServiceName)
			cert := issuedFor(t, wildcard)

			var cm configMap
			m.find(t, "ConfigMap", "-hashrings").decode(t, &cm)
			cfgs, err := shard.ParseConfig([]byte(cm.Data["hashrings.json"]))
			if err != nil {
				t.Fatal(err)
			}
			var hosts []string
			for _, ep := range cfgs[0].Endpoints {
				host, _, err := net.SplitHostPort(ep.Address)
				if err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, host)
			}
			var sm serviceMonitor
			m.find(t, "ServiceMonitor", "strata").decode(t, &sm)
			for _, ep := range sm.Spec.Endpoints {
				if ep.TLSConfig != nil && strings.Contains(ep.TLSConfig.ServerName, s.Spec.ServiceName) {
					hosts = append(hosts, ep.TLSConfig.ServerName)
				}
			}
			if len(hosts) != replicas+1 {
				t.Fatalf("names to verify %q: want %d hashring addresses and the ServiceMonitor's", hosts, replicas)
			}
			for _, host := range hosts {
				if err := cert.VerifyHostname(host); err != nil {
					t.Errorf("a certificate for %s does not cover %s: %v", wildcard, host, err)
				}
			}
			other := strings.Replace(hosts[0], ".monitoring.", ".other.", 1)
			if cert.VerifyHostname(other) == nil {
				t.Errorf("a certificate for %s covers %s of another namespace", wildcard, other)
			}
		})
	}
}

// issuedFor returns a certificate issued for name by a throw-away CA.
func issuedFor(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	certFile, _ := harness.NewCA(t).Issue(t, name)
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
