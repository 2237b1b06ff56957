// A real Kubernetes control plane for the chart tests: etcd and
// kube-apiserver on loopback. No scheduler, controllers or kubelet run, so
// nothing is ever started; the API server stores, defaults and validates
// everything it is given exactly as a cluster's would.

package helm

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/shard"
)

// controlPlaneStartTimeout bounds the wait for the API server; it is ready
// in a few seconds.
const controlPlaneStartTimeout = 90 * time.Second

// startControlPlane starts etcd and kube-apiserver and returns a
// kubeconfig for a cluster administrator.
func startControlPlane(t *testing.T) string {
	t.Helper()
	etcdBin := harness.Tool(t, "etcd")
	apiserverBin := harness.Tool(t, "kube-apiserver")
	dir := t.TempDir()

	etcdClient, etcdPeer := harness.FreeAddr(t), harness.FreeAddr(t)
	etcd := harness.StartProcess(t, etcdBin, []string{
		"--name", "test",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://" + etcdClient,
		"--advertise-client-urls", "http://" + etcdClient,
		"--listen-peer-urls", "http://" + etcdPeer,
		"--initial-advertise-peer-urls", "http://" + etcdPeer,
		"--initial-cluster", "test=http://" + etcdPeer,
		// A test cluster: no fsync, nothing to keep after a crash.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	}, nil)
	etcd.WaitHTTP("http://"+etcdClient+"/health", controlPlaneStartTimeout)

	// The API server signs service account tokens, so it needs a key, and
	// the tests authenticate with a static token in the system:masters
	// group.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "sa.key")
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	token := randomHex(t)
	tokenFile := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokenFile, []byte(token+",admin,admin,system:masters\n"))

	port := harness.FreePort(t)
	apiserver := harness.StartProcess(t, apiserverBin, []string{
		"--etcd-servers=http://" + etcdClient,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + keyFile,
		"--service-account-signing-key-file=" + keyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// No controller manager keeps the kubernetes Service's endpoints
		// (which would be 127.0.0.1, refused as an endpoint).
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--v=1",
	}, nil)

	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	waitReadyz(t, apiserver, server, token)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: %s
      insecure-skip-tls-verify: true
users:
  - name: admin
    user:
      token: %s
contexts:
  - name: test
    context:
      cluster: test
      user: admin
current-context: test
`, server, token)))
	return kubeconfig
}

// waitReadyz polls the API server's /readyz until it answers 200.
func waitReadyz(t *testing.T, p *harness.Process, server, token string) {
	t.Helper()
	client := &http.Client{
		Timeout: 2 * time.Second,
		// The API server's certificate is one it made for itself.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	deadline := time.Now().Add(controlPlaneStartTimeout)
	last := ""
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if err := p.Signal(syscall.Signal(0)); err == os.ErrProcessDone {
			t.Fatalf("kube-apiserver exited before it was ready; last: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready within %v; last: %s", controlPlaneStartTimeout, last)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestInstall installs the kind walkthrough's values into a real API
// server that does not know the ServiceMonitor kind yet, then, with
// kube-prometheus-stack's CRD, every value set, with kubectl apply
// --dry-run=server (strict field validation) and with helm install; it
// proves that the check refuses broken manifests, and upgrades a release
// to more block builders.
func TestInstall(t *testing.T) {
	kubeconfig := startControlPlane(t)
	h := newHelm(t).withKubeconfig(kubeconfig)
	kubectl := (&cli{bin: harness.Tool(t, "kubectl"), env: h.env})

	// Strata installed before kube-prometheus-stack, on a cluster without
	// the Prometheus Operator's CRDs, with serviceMonitor.enabled (as the
	// kind values have it): the install succeeds without the
	// ServiceMonitor and says so, and an upgrade once the CRD is there
	// adds it.
	const early = "before-kube-prometheus-stack"
	kindValues := "../examples/kind/values-strata.yaml"
	t.Run("kind values without the ServiceMonitor kind", func(t *testing.T) {
		kubectl.must(t, "", "create", "namespace", early)
		kubectl.must(t, "", "apply", "--validate=strict", "--namespace", early, "-f", "../examples/kind/minio.yaml")
		notes := h.must(t, "", "install", "strata", chartDir, "--namespace", early, "--values", kindValues)
		if !strings.Contains(notes, "serviceMonitor.enabled is set, but this cluster has no ServiceMonitor\nkind") {
			t.Errorf("the install notes do not say that the ServiceMonitor was left out:\n%s", notes)
		}
		stored := h.must(t, "", "get", "manifest", "strata", "--namespace", early)
		m := parseManifest(t, stored)
		if sm := m.ofKind("ServiceMonitor"); len(sm) != 0 {
			t.Errorf("the release has %v on a cluster without the kind", sm)
		}
		if len(m.ofKind("StatefulSet")) != 1 || len(m.ofKind("Deployment")) != 1 {
			t.Fatalf("the release lacks its router or block builders: %v", m)
		}
		got := kubectl.must(t, stored, "get", "--namespace", early, "-f", "-", "-o", "name")
		if strings.Count(strings.TrimSpace(got), "\n")+1 != len(m) {
			t.Errorf("the cluster holds\n%s\nwant the %d objects of the release", got, len(m))
		}
	})

	// kube-prometheus-stack's ServiceMonitor kind, for the sets that make one.
	kubectl.must(t, "", "apply", "--validate=strict", "-f", "testdata/servicemonitor-crd.yaml")
	kubectl.must(t, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com")

	t.Run("upgrade adds the ServiceMonitor once the kind exists", func(t *testing.T) {
		notes := h.must(t, "", "upgrade", "strata", chartDir, "--namespace", early, "--values", kindValues)
		if strings.Contains(notes, "no ServiceMonitor") {
			t.Errorf("the upgrade notes still say the ServiceMonitor is left out:\n%s", notes)
		}
		if got := kubectl.must(t, "", "get", "--namespace", early, "servicemonitor", "-o", "name"); strings.TrimSpace(got) != "servicemonitor.monitoring.coreos.com/strata" {
			t.Errorf("ServiceMonitors after the upgrade: %q, want strata's", got)
		}
	})

	// Secrets the users of these sets made themselves: kubectl create
	// secret arguments. Certificates are Secrets of type kubernetes.io/tls
	// with ca.crt, as cert-manager writes them.
	ca := newCertAuthority(t)
	tlsSecret := func(name string) []string {
		dir := t.TempDir()
		var args []string
		for key, data := range ca.issue(t, "strata.test") {
			writeFile(t, filepath.Join(dir, key), data)
			args = append(args, "--from-file="+key+"="+filepath.Join(dir, key))
		}
		return append([]string{name, "--type=kubernetes.io/tls"}, args...)
	}
	userSecrets := map[string][][]string{
		"existing-secret": {{"my-s3-credentials", "--from-literal=AWS_ACCESS_KEY_ID=a", "--from-literal=AWS_SECRET_ACCESS_KEY=b"}},
		"servicemonitor":  {{"strata-objstore", "--from-literal=bucket.yaml=type: FILESYSTEM"}},
		"tls": {
			tlsSecret("strata-router-tls"), tlsSecret("strata-blockbuilder-tls"), tlsSecret("strata-router-client"), tlsSecret("strata-scraper"),
			{"strata-tokens", "--from-literal=tokens=s3cr3t-a team-a"},
			{"strata-forward-token", "--from-literal=token=s3cr3t-forward"},
		},
		"mtls": {
			tlsSecret("strata-router-tls"), tlsSecret("strata-blockbuilder-tls"), tlsSecret("prometheus-client"),
			{"company-ca", "--from-file=bundle.pem=" + ca.certFile(t)},
			{"remote-write-tokens", "--from-literal=tokens.txt=s3cr3t-a team-a"},
		},
	}

	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			ns := "set-" + vs.name
			kubectl.must(t, "", "create", "namespace", ns)
			for _, s := range userSecrets[vs.name] {
				kubectl.must(t, "", append([]string{"create", "secret", "generic", "--namespace", ns}, s...)...)
			}
			if vs.name == "kind" {
				// The walkthrough's MinIO, whose Secret Strata reads.
				kubectl.must(t, "", "apply", "--validate=strict", "--namespace", ns, "-f", "../examples/kind/minio.yaml")
			}
			_, text := render(t, h, "strata", ns, []string{vs.file})
			out := kubectl.must(t, text, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
			t.Logf("kubectl apply --dry-run=server:\n%s", out)

			notes := h.must(t, "", "install", "strata", chartDir, "--namespace", ns, "--values", vs.file)
			// The notes give the remote-write snippet for kube-prometheus-stack
			// with this release's router and tenant header.
			header := "THANOS-TENANT"
			if vs.name == "rf1" {
				header = "X-Scope-OrgID"
			}
			snippet := fmt.Sprintf(`prometheus:
  prometheusSpec:
    remoteWrite:
      - url: http://strata-router.%s.svc.cluster.local:19291/api/v1/receive
        headers:
          %s: team-a
`, ns, header)
			want := []string{snippet}
			if secure, ok := secureNotes[vs.name]; ok {
				want = nil
				for _, w := range secure {
					want = append(want, fmt.Sprintf(w, ns))
				}
			}
			for _, w := range want {
				if !strings.Contains(notes, w) {
					t.Errorf("the install notes lack\n%s\nin:\n%s", w, notes)
				}
			}
			// Everything the chart renders is now stored, the ServiceMonitor
			// too where the values ask for one.
			got := kubectl.must(t, text, "get", "--namespace", ns, "-f", "-", "-o", "name")
			if want := len(parseManifest(t, text)); strings.Count(strings.TrimSpace(got), "\n")+1 != want {
				t.Errorf("the cluster holds\n%s\nwant the %d objects rendered", got, want)
			}
			if readValues(t, vs.file).ServiceMonitor.Enabled && !strings.Contains(got, "servicemonitor.monitoring.coreos.com/strata\n") {
				t.Errorf("the cluster holds no ServiceMonitor of the release:\n%s", got)
			}
		})
	}

	t.Run("broken manifests are refused", func(t *testing.T) {
		// A namespace of its own, so that every apply is a creation.
		ns := "refusals"
		kubectl.must(t, "", "create", "namespace", ns)
		m, _ := render(t, h, "strata", ns, []string{valueSets[0].file})
		router := m.find(t, "Deployment", "-router")
		bb := m.find(t, "StatefulSet", "-blockbuilder")
		for _, tc := range []struct {
			name string
			obj  *object
			old  string
			new  string
			want string
		}{
			{"misspelt field", router, "\n      containers:\n", "\n      contaners:\n", `unknown field "spec.template.spec.contaners"`},
			{"selector that does not match the pod labels", bb, "app.kubernetes.io/component: blockbuilder\n", "app.kubernetes.io/component: blockbuildr\n", "`selector` does not match template `labels`"},
			{"env value that is not a string", router, "value: \"THANOS-TENANT\"", "value: 42", "cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value of type string"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !strings.Contains(tc.obj.text, tc.old) {
					t.Fatalf("%s has no %q to break:\n%s", tc.obj, tc.old, tc.obj.text)
				}
				broken := breakTemplate(t, tc.obj.text, tc.old, tc.new)
				// The intact object passes, so the refusal below is the break's.
				kubectl.must(t, "---\n"+tc.obj.text, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
				_, err := kubectl.run("---\n"+broken, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
				if err == nil {
					t.Fatalf("the API server accepted a broken %s", tc.obj)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("refused, but not for %q:\n%v", tc.want, err)
				}
			})
		}
		t.Run("misspelt ServiceMonitor tlsConfig field", func(t *testing.T) {
			sm, _ := render(t, h, "strata", ns, []string{"testdata/values-tls.yaml"})
			obj := sm.find(t, "ServiceMonitor", "strata")
			kubectl.must(t, "---\n"+obj.text, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
			broken := strings.Replace(obj.text, "serverName:", "servername:", 1)
			_, err := kubectl.run("---\n"+broken, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
			if err == nil || !strings.Contains(err.Error(), `unknown field "spec.endpoints[0].tlsConfig.servername"`) {
				t.Fatalf("want the CRD's schema to refuse spec.endpoints[0].tlsConfig.servername, got %v", err)
			}
		})
		t.Run("misspelt ServiceMonitor field", func(t *testing.T) {
			sm, _ := render(t, h, "strata", ns, []string{"testdata/values-servicemonitor.yaml"})
			obj := sm.find(t, "ServiceMonitor", "strata")
			kubectl.must(t, "---\n"+obj.text, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
			broken := strings.Replace(obj.text, "path: /metrics", "pth: /metrics", 1)
			_, err := kubectl.run("---\n"+broken, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
			if err == nil || !strings.Contains(err.Error(), `unknown field "spec.endpoints[0].pth"`) {
				t.Fatalf("want the CRD's schema to refuse spec.endpoints[0].pth, got %v", err)
			}
		})
	})

	t.Run("upgrade to more block builders", func(t *testing.T) {
		ns := "set-defaults"
		before := getJSON[deploymentStatus](t, kubectl, ns, "deployment/strata-router")
		h.must(t, "", "upgrade", "strata", chartDir, "--namespace", ns, "--values", valueSets[0].file, "--set", "blockbuilder.replicas=5")
		after := getJSON[deploymentStatus](t, kubectl, ns, "deployment/strata-router")
		if after.Metadata.Generation != before.Metadata.Generation {
			t.Errorf("the router Deployment went from generation %d to %d: scaling block builders would restart every router", before.Metadata.Generation, after.Metadata.Generation)
		}
		sts := getJSON[deploymentStatus](t, kubectl, ns, "statefulset/strata-blockbuilder")
		if sts.Spec.Replicas != 5 {
			t.Errorf("StatefulSet replicas = %d after the upgrade, want 5", sts.Spec.Replicas)
		}
		cm := getJSON[configMap](t, kubectl, ns, "configmap/strata-hashrings")
		cfgs, err := shard.ParseConfig([]byte(cm.Data["hashrings.json"]))
		if err != nil || len(cfgs) != 1 || len(cfgs[0].Endpoints) != 5 {
			t.Fatalf("the stored hashrings after the upgrade: %v\n%s", err, cm.Data["hashrings.json"])
		}
		if last := cfgs[0].Endpoints[4].Address; last != "strata-blockbuilder-4.strata-blockbuilder-headless.set-defaults.svc.cluster.local:19291" {
			t.Errorf("fifth endpoint %q, want pod strata-blockbuilder-4's DNS name", last)
		}
	})
}

// breakTemplate replaces the first old in the pod template (and only
// there: a label replaced in the selector too would still match).
func breakTemplate(t *testing.T, text, old, new string) string {
	t.Helper()
	i := strings.Index(text, "  template:\n")
	if i < 0 {
		t.Fatalf("no pod template in:\n%s", text)
	}
	j := strings.Index(text[i:], old)
	if j < 0 {
		t.Fatalf("no %q in the pod template of:\n%s", old, text)
	}
	return text[:i+j] + new + text[i+j+len(old):]
}

type deploymentStatus struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Replicas int `json:"replicas"`
	} `json:"spec"`
}

// getJSON reads one object of the cluster.
func getJSON[T any](t *testing.T, kubectl *cli, ns, ref string) T {
	t.Helper()
	out := kubectl.must(t, "", "get", "--namespace", ns, ref, "-o", "json")
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("kubectl get %s: %v", ref, err)
	}
	return v
}

// secureNotes are parts of the install notes of the sets with TLS or
// tokens, for namespace %[1]s: the remote-write snippet with https, the
// token and the CA (and client certificate) as kube-prometheus-stack
// takes them, the Secrets it names, and the names the certificates must
// carry (TestBlockBuilderCertificateName shows that the block builders'
// covers the hashring).
var secureNotes = map[string][]string{
	"tls": {`prometheus:
  prometheusSpec:
    remoteWrite:
      - url: https://strata-router.%[1]s.svc.cluster.local:19291/api/v1/receive
        headers:
          THANOS-TENANT: team-a
        authorization:
          credentials:
            name: strata-remote-write-token
            key: token
        tlsConfig:
          ca:
            secret:
              name: strata-router-ca
              key: ca.crt

The snippet names Secrets for you to create in Prometheus' namespace:
  strata-remote-write-token   token: one of the tokens in key tokens of Secret strata-tokens
  strata-router-ca            ca.crt: the CA of the routers' certificate, key ca.crt of Secret strata-router-tls
`, `
TLS certificates must be valid for the names their clients verify:
  routers (Secret strata-router-tls): strata-router.%[1]s.svc.cluster.local
  block builders (Secret strata-blockbuilder-tls): *.strata-blockbuilder-headless.%[1]s.svc.cluster.local
`},
	"mtls": {`the tenant is the organization
of the client certificate Prometheus presents (the THANOS-TENANT header is not read):

prometheus:
  prometheusSpec:
    remoteWrite:
      - url: https://strata-router.%[1]s.svc.cluster.local:19291/api/v1/receive
        authorization:
          credentials:
            name: strata-remote-write-token
            key: token
        tlsConfig:
          ca:
            secret:
              name: strata-router-ca
              key: ca.crt
          cert:
            secret:
              name: strata-remote-write-client
              key: tls.crt
          keySecret:
            name: strata-remote-write-client
            key: tls.key

The snippet names Secrets for you to create in Prometheus' namespace:
  strata-remote-write-token   token: one of the tokens in key tokens.txt of Secret remote-write-tokens
  strata-router-ca            ca.crt: the CA of the routers' certificate, key bundle.pem of Secret company-ca
  strata-remote-write-client  tls.crt, tls.key: a client certificate signed by the routers' client CA, whose organization is the tenant
`, `
TLS certificates must be valid for the names their clients verify:
  routers (Secret strata-router-tls): strata-router.%[1]s.svc.cluster.local
  block builders (Secret strata-blockbuilder-tls): strata-blockbuilder.internal
`},
}
