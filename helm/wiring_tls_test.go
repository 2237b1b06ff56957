// The wiring test of TLS and bearer tokens: the real strata binaries, run
// with exactly what the rendered manifests of testdata/values-tls.yaml give
// them and the Secrets a user (or cert-manager) would make, take
// remote-write over HTTPS with a token, forward it over mutual TLS with
// the routers' token, and land it in a real S3 server.

package helm

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/internal/harness"
)

func TestWiringTLS(t *testing.T) {
	bin := harness.Tool(t, "strata")
	h := newHelm(t)
	s3 := harness.StartS3(t)

	// The set TestInstall installs, on this test's S3 server, with one
	// router and RF 2 over three block builders.
	const setFile = "testdata/values-tls.yaml"
	m, _ := render(t, h, "strata", wiringNamespace, []string{setFile, writeValues(t, fmt.Sprintf(`
replicationFactor: 2
router:
  replicas: 1
blockbuilder:
  replicas: 3
objstore:
  s3:
    bucket: %s
    endpoint: %s
    region: %s
    insecure: true
    pathStyle: true
    accessKey: %s
    secretKey: %s
`, s3.Bucket, s3.Addr, s3.Region, s3.AccessKey, s3.SecretKey))})
	v := readValues(t, setFile)
	var sts, deploy workload
	m.find(t, "StatefulSet", "-blockbuilder").decode(t, &sts)
	m.find(t, "Deployment", "-router").decode(t, &deploy)

	// The user's Secrets. Certificates carry the names the install notes
	// ask for: the routers' service name, and the wildcard over the block
	// builders' headless service, plus 127.0.0.1 because this test's
	// hashring gives the routers loopback addresses instead of pod names
	// (TestBlockBuilderCertificateName shows that the wildcard covers the
	// pod names).
	ca := newCertAuthority(t)
	routerName := fmt.Sprintf("%s.%s.svc.cluster.local", m.find(t, "Service", "-router").Metadata.Name, wiringNamespace)
	bbWildcard := fmt.Sprintf("*.%s.%s.svc.cluster.local", sts.Spec.ServiceName, wiringNamespace)
	tokenA, tokenAny, forwardToken := "a-"+randomHex(t), "any-"+randomHex(t), "fwd-"+randomHex(t)
	routerTLS, bbTLS, routerClient := v.TLS.Router.ExistingSecret, v.TLS.Blockbuilder.ExistingSecret, v.TLS.Forward.ClientCertSecret
	secrets := map[string]map[string][]byte{
		routerTLS:                          ca.issue(t, routerName),
		bbTLS:                              ca.issue(t, bbWildcard, "127.0.0.1"),
		routerClient:                       ca.issue(t, "strata-router"),
		v.ServiceMonitor.ClientCertSecret:  ca.issue(t, "prometheus"),
		v.Auth.BearerTokens.ExistingSecret: {cmp.Or(v.Auth.BearerTokens.Key, "tokens"): []byte("# team-a's Prometheus\n" + tokenA + " team-a\n" + tokenAny + "\n")},
		v.Auth.ForwardToken.ExistingSecret: {cmp.Or(v.Auth.ForwardToken.Key, "token"): []byte(forwardToken + "\n")},
	}

	var bbs []*pod
	dns := map[string]string{}
	bk := &kubelet{t: t, m: m, ns: wiringNamespace, secrets: secrets}
	for i, addr := range podAddresses(sts, wiringNamespace, "cluster.local") {
		p := bk.preparePod(sts, fmt.Sprintf("%s-%d", sts.Metadata.Name, i))
		p.proc = harness.StartProcess(t, bin, p.args, p.env)
		bbs = append(bbs, p)
		dns[addr] = p.addrs["http"]
	}
	rk := &kubelet{t: t, m: m, ns: wiringNamespace, secrets: secrets, transform: map[string]func(string, []byte) []byte{}}
	for _, vol := range deploy.Spec.Template.Spec.Volumes {
		if vol.ConfigMap != nil && strings.HasSuffix(vol.ConfigMap.Name, "-hashrings") {
			rk.transform[vol.ConfigMap.Name] = loopbackHashrings(t, dns)
		}
	}
	router := rk.preparePod(deploy, deploy.Metadata.Name+"-7d9f8b6c5-x2x4q")
	router.proc = harness.StartProcess(t, bin, router.args, router.env)

	// Clients as the cluster has them: Prometheus verifies the routers by
	// their service name with the CA of their Secret; the routers verify
	// block builders with theirs and present their client certificate.
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	prometheus := client(&tls.Config{RootCAs: pool(t, secrets[routerTLS]["ca.crt"]), ServerName: routerName})
	bbCAs := pool(t, secrets[bbTLS]["ca.crt"])
	asRouter := client(&tls.Config{RootCAs: bbCAs, Certificates: []tls.Certificate{keyPair(t, secrets[routerClient])}})
	get := func(c *http.Client, url string) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}

	// Ready and alive as the kubelet sees them: HTTPS probes of the
	// routers, TCP checks of the block builders (mutual TLS).
	for _, p := range append([]*pod{router}, bbs...) {
		waitFor(t, p, "its readiness probe", func() error { return p.probe(p.c.ReadinessProbe) })
		if err := p.probe(p.c.LivenessProbe); err != nil {
			t.Fatalf("%s liveness probe: %v", p.name, err)
		}
	}
	httpsProbe := &probe{HTTPGet: &httpGetAction{Path: "/-/healthy", Port: yaml.Node{Kind: yaml.ScalarNode, Value: "http"}, Scheme: "HTTPS"}}
	for _, p := range bbs {
		// Why the block builders' probes are TCP checks: an HTTPS probe
		// presents no client certificate and never passes.
		if err := p.probe(httpsProbe); err == nil {
			t.Errorf("%s passed an HTTPS probe without a client certificate: mutual TLS is not on", p.name)
		}
		// Ready for writes, as the routers ask: with their certificate.
		waitFor(t, p, "/-/ready over mutual TLS", func() error { return get(asRouter, "https://"+p.addrs["http"]+"/-/ready") })
	}
	waitFor(t, router, "/-/ready over HTTPS", func() error { return get(prometheus, "https://"+router.addrs["http"]+"/-/ready") })

	tenantHeader, _ := router.c.env("STRATA_TENANT_HEADER")
	defaultTenant, _ := router.c.env("STRATA_DEFAULT_TENANT")
	routerURL := "https://" + router.addrs["http"] + "/api/v1/receive"
	now := time.Now().Add(-time.Minute).UnixMilli()
	headers := func(tenant, token string) http.Header {
		hdr := http.Header{}
		if tenant != "" {
			hdr.Set(tenantHeader, tenant)
		}
		if token != "" {
			hdr.Set("Authorization", "Bearer "+token)
		}
		return hdr
	}

	// Refused: plain HTTP, no token, a token for another tenant; and
	// around the routers, a block builder refuses a client without a
	// certificate, and the routers' peers without the routers' token.
	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		hdr    http.Header
		want   int
	}{
		{"plain HTTP", http.DefaultClient, "http://" + router.addrs["http"] + "/api/v1/receive", headers("team-a", tokenA), http.StatusBadRequest},
		{"no token", prometheus, routerURL, headers("team-a", ""), http.StatusUnauthorized},
		{"unknown token", prometheus, routerURL, headers("team-a", "guess"), http.StatusUnauthorized},
		{"token of another tenant", prometheus, routerURL, headers("team-b", tokenA), http.StatusForbidden},
		{"block builder, no token", asRouter, "https://" + bbs[0].addrs["http"] + "/api/v1/receive", headers("team-a", ""), http.StatusUnauthorized},
		{"block builder, a sender's token", asRouter, "https://" + bbs[0].addrs["http"] + "/api/v1/receive", headers("team-a", tokenAny), http.StatusUnauthorized},
	} {
		if code, body := remoteWrite(t, tc.client, tc.url, tc.hdr, "refused", 1, 1, now); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, strings.TrimSpace(body), tc.want)
		}
	}
	noCert := client(&tls.Config{RootCAs: bbCAs})
	if _, err := noCert.Get("https://" + bbs[0].addrs["http"] + "/-/ready"); err == nil {
		t.Error("a block builder answered a client without a certificate")
	}

	want := map[string]int{}
	push := func(batch string) {
		t.Helper()
		for _, w := range []struct{ tenant, token string }{{"team-a", tokenA}, {"team-a", tokenAny}, {"", tokenAny}} {
			code, body := remoteWrite(t, prometheus, routerURL, headers(w.tenant, w.token), batch, 20, 5, now)
			if code != http.StatusNoContent {
				t.Fatalf("remote-write for tenant %q: %d: %s", w.tenant, code, body)
			}
			want[cmp.Or(w.tenant, defaultTenant)] += 20 * 5
			now += 5000
		}
	}
	push("1")

	// Prometheus scrapes every pod with the ServiceMonitor's tlsConfig:
	// the scheme, the CA Secret, the name it verifies and its client
	// certificate.
	var sm serviceMonitor
	m.find(t, "ServiceMonitor", "strata").decode(t, &sm)
	scraped := 0
	for _, so := range m.ofKind("Service") {
		var svc service
		so.decode(t, &svc)
		pods := bbs
		if svc.Metadata.Labels["app.kubernetes.io/component"] == "router" {
			pods = []*pod{router}
		}
		for _, ep := range sm.Spec.Endpoints {
			if !keptBy(t, ep.Relabelings, svc) {
				continue
			}
			cfg := &tls.Config{}
			if tc := ep.TLSConfig; tc != nil {
				cfg.ServerName = tc.ServerName
				cfg.RootCAs = pool(t, secrets[tc.CA.Secret.Name][tc.CA.Secret.Key])
				if tc.Cert.Secret != nil {
					cfg.Certificates = []tls.Certificate{keyPair(t, map[string][]byte{
						"tls.crt": secrets[tc.Cert.Secret.Name][tc.Cert.Secret.Key],
						"tls.key": secrets[tc.KeySecret.Name][tc.KeySecret.Key],
					})}
				}
			}
			for _, p := range pods {
				resp, err := client(cfg).Get(cmp.Or(ep.Scheme, "http") + "://" + p.addrs[ep.Port] + ep.Path)
				if err != nil {
					t.Errorf("scrape %s as the ServiceMonitor says: %v", p.name, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE strata_") {
					t.Errorf("scrape %s: %s\n%.300s", p.name, resp.Status, body)
				}
				scraped++
			}
		}
	}
	if scraped != 1+len(bbs) {
		t.Errorf("the ServiceMonitor scraped %d pods, want %d", scraped, 1+len(bbs))
	}

	// cert-manager renews the routers' certificate: the kubelet swaps it
	// into the Secret's volume, and the router serves it without a
	// restart.
	renewed := ca.issue(t, routerName)
	newCert := keyPair(t, renewed)
	routerPid := router.proc.Pid()
	rk.renewSecret(router, routerTLS, renewed)
	waitFor(t, router, "the renewed certificate", func() error {
		conn, err := tls.Dial("tcp", router.addrs["http"], &tls.Config{RootCAs: pool(t, renewed["ca.crt"]), ServerName: routerName})
		if err != nil {
			return err
		}
		defer conn.Close()
		if served := conn.ConnectionState().PeerCertificates[0]; string(served.Raw) != string(newCert.Certificate[0]) {
			return errors.New("still the old certificate, serial " + served.SerialNumber.String())
		}
		return nil
	})
	push("2")

	if err := router.proc.Stop(); err != nil {
		t.Errorf("router exit: %v", err)
	}
	if router.proc.Pid() != routerPid {
		t.Error("the router restarted")
	}
	for _, p := range bbs {
		if err := p.proc.Stop(); err != nil {
			t.Errorf("%s exit: %v", p.name, err)
		}
	}
	bkt, err := s3.BucketConfig().Open(context.Background(), slog.New(slog.DiscardHandler), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	tenantLabel, _ := bbs[0].c.env("STRATA_TENANT_LABEL")
	replicaLabel, _ := bbs[0].c.env("STRATA_REPLICA_LABEL")
	got, _ := harness.BucketSamples(t, bkt, tenantLabel, replicaLabel)
	for tenant, n := range want {
		if got.TenantCount(tenant) != n {
			t.Errorf("tenant %s: %d samples in the bucket, want %d", tenant, got.TenantCount(tenant), n)
		}
	}
	if got.TenantCount("team-b") != 0 {
		t.Errorf("tenant team-b, whose write was refused, has %d samples in the bucket", got.TenantCount("team-b"))
	}
}
