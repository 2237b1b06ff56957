// The wiring test: the real strata binaries, run with exactly what the
// rendered manifests give their containers, write into a real S3 server.

package helm

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/shard"
)

// wiringNamespace is the namespace the wiring test renders for.
const wiringNamespace = "monitoring"

// pod is one pod of a rendered workload, run as a local process: its
// volumes are directories, its listen addresses free loopback ports.
type pod struct {
	name string
	args []string
	env  []string
	// volumes maps a volume name to the directory standing in for it.
	volumes map[string]string
	// addrs maps a container port's name to the loopback address it is
	// served on instead.
	addrs map[string]string
	// specs maps a volume name to its source in the pod template.
	specs map[string]*volume
	c     *container
	proc  *harness.Process
}

// kubelet plays the kubelet's part for rendered pods: it lays out volumes
// and resolves environment variables from the rendered objects.
type kubelet struct {
	t  *testing.T
	m  manifest
	ns string
	// transform rewrites a ConfigMap's files before they are written (the
	// hashrings' DNS names to loopback addresses).
	transform map[string]func(key string, data []byte) []byte
	// secrets are the Secrets the user made: the release refers to them
	// but does not hold them.
	secrets map[string]map[string][]byte
}

// preparePod builds the process of pod name of workload w: volumes,
// environment and arguments as the kubelet and the image would give them.
func (k *kubelet) preparePod(w workload, name string) *pod {
	t := k.t
	t.Helper()
	c := onlyContainer(t, w)
	p := &pod{name: name, volumes: map[string]string{}, addrs: map[string]string{}, specs: map[string]*volume{}, c: c}
	root := t.TempDir()

	claims := map[string]bool{}
	for _, vct := range w.Spec.VolumeClaimTemplates {
		claims[vct.Metadata.Name] = true
	}
	for _, vm := range c.VolumeMounts {
		if vm.SubPath != "" {
			t.Fatalf("%s: subPath mounts are not supported by this test (and not updated by the kubelet)", name)
		}
		dir := filepath.Join(root, vm.Name)
		p.volumes[vm.Name] = dir
		var vol *volume
		for i := range w.Spec.Template.Spec.Volumes {
			if w.Spec.Template.Spec.Volumes[i].Name == vm.Name {
				vol = &w.Spec.Template.Spec.Volumes[i]
			}
		}
		p.specs[vm.Name] = vol
		switch {
		case vol == nil && claims[vm.Name], vol != nil && vol.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		case vol != nil && vol.ConfigMap != nil:
			o := k.m.byName("ConfigMap", vol.ConfigMap.Name)
			if o == nil {
				t.Fatalf("%s: volume %s: the release has no ConfigMap %s", name, vm.Name, vol.ConfigMap.Name)
			}
			var cm configMap
			o.decode(t, &cm)
			files := map[string][]byte{}
			for key, v := range cm.Data {
				files[key] = []byte(v)
				if f := k.transform[cm.Metadata.Name]; f != nil {
					files[key] = f(key, files[key])
				}
			}
			writeAtomicDir(t, dir, files)
		case vol != nil && vol.Secret != nil:
			writeAtomicDir(t, dir, k.project(name, vol, k.secretFiles(vol.Secret.SecretName)))
		default:
			t.Fatalf("%s: volume %s has a source this test does not lay out: %+v", name, vm.Name, vol)
		}
	}

	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = k.valueFrom(name, e)
		}
		if strings.Contains(v, "$(") {
			t.Fatalf("%s: %s=%q: variable references are not resolved by this test", name, e.Name, v)
		}
		// A listen address on a container port becomes a loopback one.
		for _, port := range c.Ports {
			if v == fmt.Sprintf(":%d", port.ContainerPort) {
				p.addrs[port.Name] = harness.FreeAddr(t)
				v = p.addrs[port.Name]
			}
		}
		// A path in a mounted volume points into the directory standing
		// in for it (the deepest mount holds it, as in the container).
		var in *volumeMount
		for i, vm := range c.VolumeMounts {
			if (v == vm.MountPath || strings.HasPrefix(v, vm.MountPath+"/")) && (in == nil || len(vm.MountPath) > len(in.MountPath)) {
				in = &c.VolumeMounts[i]
			}
		}
		if in != nil {
			v = p.volumes[in.Name] + strings.TrimPrefix(v, in.MountPath)
		}
		p.env = append(p.env, e.Name+"="+v)
	}
	if p.addrs["http"] == "" {
		t.Fatalf("%s: no environment variable makes it listen on its http port %d", name, c.port("http"))
	}
	p.args = c.Args
	return p
}

func (k *kubelet) valueFrom(podName string, e envVar) string {
	t := k.t
	t.Helper()
	switch vf := e.ValueFrom; {
	case vf.FieldRef != nil:
		switch vf.FieldRef.FieldPath {
		case "metadata.name":
			return podName
		case "metadata.namespace":
			return k.ns
		}
		t.Fatalf("%s: %s: fieldRef %s is not resolved by this test", podName, e.Name, vf.FieldRef.FieldPath)
	case vf.SecretKeyRef != nil:
		files := k.secretFiles(vf.SecretKeyRef.Name)
		v, ok := files[vf.SecretKeyRef.Key]
		if !ok {
			t.Fatalf("%s: %s: secret %s has no key %q (keys: %v)", podName, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key, sortedKeys(files))
		}
		return string(v)
	case vf.ConfigMapKeyRef != nil:
		o := k.m.byName("ConfigMap", vf.ConfigMapKeyRef.Name)
		var cm configMap
		if o != nil {
			o.decode(t, &cm)
		}
		v, ok := cm.Data[vf.ConfigMapKeyRef.Key]
		if !ok {
			t.Fatalf("%s: %s: the release has no ConfigMap %s with key %q", podName, e.Name, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
		}
		return v
	}
	t.Fatalf("%s: %s: empty valueFrom", podName, e.Name)
	return ""
}

func (k *kubelet) secretFiles(name string) map[string][]byte {
	k.t.Helper()
	o := k.m.byName("Secret", name)
	if o == nil {
		if files, ok := k.secrets[name]; ok {
			return files
		}
		k.t.Fatalf("the release has no Secret %s, and the user made none", name)
	}
	var s secret
	o.decode(k.t, &s)
	files, err := s.files()
	if err != nil {
		k.t.Fatal(err)
	}
	return files
}

// project returns the files of a Secret volume: every key of the Secret,
// or only the items the volume projects, under their paths. A projected
// key the Secret lacks keeps a pod from starting, so it fails the test.
func (k *kubelet) project(podName string, vol *volume, files map[string][]byte) map[string][]byte {
	k.t.Helper()
	if len(vol.Secret.Items) == 0 {
		return files
	}
	out := map[string][]byte{}
	for _, it := range vol.Secret.Items {
		data, ok := files[it.Key]
		if !ok {
			k.t.Fatalf("%s: volume %s: Secret %s has no key %q (keys: %v)", podName, vol.Name, vol.Secret.SecretName, it.Key, sortedKeys(files))
		}
		out[it.Path] = data
	}
	return out
}

// renewSecret plays the kubelet's part when the user's Secret name changes
// (cert-manager renewing a certificate): the new files are swapped into
// every volume of p that mounts it.
func (k *kubelet) renewSecret(p *pod, name string, files map[string][]byte) {
	k.t.Helper()
	k.secrets[name] = files
	renewed := 0
	for vname, vol := range p.specs {
		if vol != nil && vol.Secret != nil && vol.Secret.SecretName == name {
			writeAtomicDir(k.t, p.volumes[vname], k.project(p.name, vol, files))
			renewed++
		}
	}
	if renewed == 0 {
		k.t.Fatalf("%s mounts no Secret %s", p.name, name)
	}
}

// probe runs a container probe as the kubelet does: an HTTP GET that
// passes on 200-399, over HTTPS without verifying the certificate (the
// kubelet does not, and presents none), or a TCP connection.
func (p *pod) probe(pr *probe) error {
	switch {
	case pr == nil:
		return errors.New("no probe")
	case pr.TCPSocket != nil:
		addr := p.addrs[pr.TCPSocket.Port.Value]
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	case pr.HTTPGet != nil:
		scheme := strings.ToLower(cmp.Or(pr.HTTPGet.Scheme, "HTTP"))
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := client.Get(scheme + "://" + p.addrs[pr.HTTPGet.Port.Value] + pr.HTTPGet.Path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", pr.HTTPGet.Path, resp.Status)
		}
		return nil
	}
	return fmt.Errorf("a probe this test does not run: %+v", pr)
}

// waitFor polls check until it passes, failing the test if p's process
// exits first or a minute passes.
func waitFor(t *testing.T, p *pod, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if p.proc.Signal(syscall.Signal(0)) == os.ErrProcessDone {
			t.Fatalf("%s exited before %s; last: %v\n%s", p.name, what, err, p.proc.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited a minute for %s; last: %v", p.name, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeAtomicDir lays out files as the kubelet does a ConfigMap or Secret
// volume, and updates them the way it does: the files live in a
// timestamped directory, "..data" links to it and each file name links
// through "..data"; an update writes a new directory and swaps "..data" by
// a rename. A reader of <dir>/<key> sees the old or the new file, whole.
func writeAtomicDir(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), time.Now().UnixNano())
	for key, data := range files {
		writeFile(t, filepath.Join(dir, ts, key), data)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for key := range files {
		link := filepath.Join(dir, key)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", key), link); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		os.RemoveAll(filepath.Join(dir, old))
	}
}

// imageEntrypoint returns the ENTRYPOINT of the Dockerfile's final stage:
// the binary a container without a command runs with the chart's args.
func imageEntrypoint(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entrypoint []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "FROM ") {
			entrypoint = nil // a new stage
		}
		if rest, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Fatalf("Dockerfile ENTRYPOINT %s: want the exec form (a JSON array): %v", rest, err)
			}
		}
	}
	if len(entrypoint) != 1 {
		t.Fatalf("the Dockerfile's final stage has ENTRYPOINT %q, want the strata binary alone", entrypoint)
	}
	return entrypoint
}

func TestWiring(t *testing.T) {
	bin := harness.Tool(t, "strata")
	h := newHelm(t)
	s3 := harness.StartS3(t)
	if ep := imageEntrypoint(t); filepath.Base(ep[0]) != "strata" {
		t.Fatalf("the image's entrypoint %q is not the strata binary", ep)
	}

	valuesFor := func(blockBuilders int) string {
		return writeValues(t, fmt.Sprintf(`
replicationFactor: 2
router:
  replicas: 1
  # The test waits for a reload; a cluster's kubelet takes up to a minute
  # to swap a ConfigMap anyway.
  hashringReloadInterval: 1s
blockbuilder:
  replicas: %d
  externalLabels:
    cluster: wiring
objstore:
  s3:
    bucket: %s
    endpoint: %s
    region: %s
    insecure: true
    pathStyle: true
    accessKey: %s
    secretKey: %s
`, blockBuilders, s3.Bucket, s3.Addr, s3.Region, s3.AccessKey, s3.SecretKey))
	}
	// The release before and after `helm upgrade --set blockbuilder.replicas=4`.
	before, _ := render(t, h, "strata", wiringNamespace, []string{valuesFor(3)})
	after, _ := render(t, h, "strata", wiringNamespace, []string{valuesFor(4)})

	var sts workload
	after.find(t, "StatefulSet", "-blockbuilder").decode(t, &sts)
	var bbs []*pod
	k := &kubelet{t: t, m: after, ns: wiringNamespace}
	for i := 0; i < *sts.Spec.Replicas; i++ {
		p := k.preparePod(sts, fmt.Sprintf("%s-%d", sts.Metadata.Name, i))
		p.proc = harness.StartProcess(t, bin, p.args, p.env)
		bbs = append(bbs, p)
	}

	// The hashrings name pods by DNS; each name must be one of the
	// StatefulSet's pods, which here listen on loopback ports.
	dns := map[string]string{}
	for i, a := range podAddresses(sts, wiringNamespace, "cluster.local") {
		dns[a] = bbs[i].addrs["http"]
	}
	toLoopback := loopbackHashrings(t, dns)

	var deploy workload
	before.find(t, "Deployment", "-router").decode(t, &deploy)
	rk := &kubelet{t: t, m: before, ns: wiringNamespace, transform: map[string]func(string, []byte) []byte{}}
	var hashringsCM string
	for _, v := range deploy.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && strings.HasSuffix(v.ConfigMap.Name, "-hashrings") {
			hashringsCM = v.ConfigMap.Name
			rk.transform[v.ConfigMap.Name] = toLoopback
		}
	}
	router := rk.preparePod(deploy, deploy.Metadata.Name+"-7d9f8b6c5-x2x4q")
	router.proc = harness.StartProcess(t, bin, router.args, router.env)

	// Ready and alive on the probes' paths, as the kubelet would ask.
	for _, p := range append([]*pod{router}, bbs...) {
		p.proc.WaitHTTP("http://"+p.addrs["http"]+p.c.ReadinessProbe.HTTPGet.Path, 30*time.Second)
		p.proc.WaitHTTP("http://"+p.addrs["http"]+p.c.LivenessProbe.HTTPGet.Path, 5*time.Second)
	}

	tenantHeader, _ := router.c.env("STRATA_TENANT_HEADER")
	defaultTenant, _ := router.c.env("STRATA_DEFAULT_TENANT")
	url := "http://" + router.addrs["http"] + "/api/v1/receive"
	now := time.Now().Add(-time.Minute).UnixMilli()
	want := map[string]int{}
	push := func(batch string) {
		t.Helper()
		for _, tenant := range []string{"team-a", ""} {
			n := pushSeries(t, url, tenantHeader, tenant, batch, 20, 5, now)
			if tenant == "" {
				tenant = defaultTenant
			}
			want[tenant] += n
		}
	}
	push("1")

	// `helm upgrade` to four block builders: the kubelet swaps the new
	// ConfigMap into the router's volume, and the router must follow
	// without a restart.
	if after.find(t, "Deployment", "-router").text != before.find(t, "Deployment", "-router").text {
		t.Fatal("the router Deployment differs between 3 and 4 block builders")
	}
	var cm configMap
	after.byName("ConfigMap", hashringsCM).decode(t, &cm)
	writeAtomicDir(t, router.volumes[volumeOf(t, deploy, hashringsCM)], map[string][]byte{"hashrings.json": toLoopback("hashrings.json", []byte(cm.Data["hashrings.json"]))})
	waitMetric(t, "http://"+router.addrs["http"]+"/metrics", `strata_hashring_endpoints{hashring="default"} 4`)
	routerPid := router.proc.Pid()
	push("2")

	// Shut down as Kubernetes does: SIGTERM, and the block builders flush
	// and upload their heads before they exit.
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
		if entries, _ := os.ReadDir(p.volumes["data"]); len(entries) == 0 {
			t.Errorf("%s wrote nothing to its data volume (STRATA_DATA_DIR)", p.name)
		}
	}

	bkt, err := s3.BucketConfig().Open(context.Background(), slog.New(slog.DiscardHandler), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	tenantLabel, _ := bbs[0].c.env("STRATA_TENANT_LABEL")
	replicaLabel, _ := bbs[0].c.env("STRATA_REPLICA_LABEL")
	got, infos := harness.BucketSamples(t, bkt, tenantLabel, replicaLabel)
	for tenant, n := range want {
		if got.TenantCount(tenant) != n {
			t.Errorf("tenant %s: %d samples in the bucket, want %d", tenant, got.TenantCount(tenant), n)
		}
	}
	replicas := map[string]int{}
	for _, b := range infos {
		replicas[b.Replica]++
		if b.Meta.Thanos.Labels["cluster"] != "wiring" {
			t.Errorf("block %s has labels %v, want the external label cluster=wiring", b.Meta.ULID, b.Meta.Thanos.Labels)
		}
	}
	for _, p := range bbs {
		if replicas[p.name] == 0 {
			t.Errorf("no block of replica %s (blocks by replica: %v)", p.name, replicas)
		}
	}
	if len(replicas) != len(bbs) {
		t.Errorf("blocks by replica %v, want one replica per pod", replicas)
	}
}

// loopbackHashrings returns a transform of the hashrings ConfigMap that
// replaces each block builder's DNS name by the loopback address its
// process listens on (dns); a name that is no block builder pod's fails
// the test.
func loopbackHashrings(t *testing.T, dns map[string]string) func(key string, data []byte) []byte {
	return func(key string, data []byte) []byte {
		t.Helper()
		cfgs, err := shard.ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		for _, c := range cfgs {
			for _, ep := range c.Endpoints {
				if dns[ep.Address] == "" {
					t.Fatalf("hashrings.json names %s, which is no block builder pod's DNS name (%v)", ep.Address, sortedKeys(dns))
				}
				data = bytes.ReplaceAll(data, []byte(ep.Address), []byte(dns[ep.Address]))
			}
		}
		return data
	}
}

// volumeOf is the name of the volume of w that mounts ConfigMap name.
func volumeOf(t *testing.T, w workload, configMapName string) string {
	t.Helper()
	for _, v := range w.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == configMapName {
			return v.Name
		}
	}
	t.Fatalf("%s mounts no ConfigMap %s", w.Metadata.Name, configMapName)
	return ""
}

// pushSeries sends one remote-write 1.0 request of n series with samples
// each (series named by batch), for tenant ("" for none), and returns the
// number of samples sent.
func pushSeries(t *testing.T, url, tenantHeader, tenant, batch string, n, samples int, from int64) int {
	t.Helper()
	hdr := http.Header{}
	if tenant != "" {
		hdr.Set(tenantHeader, tenant)
	}
	if code, body := remoteWrite(t, http.DefaultClient, url, hdr, batch, n, samples, from); code != http.StatusNoContent {
		t.Fatalf("remote-write for tenant %q: %d: %s", tenant, code, body)
	}
	return n * samples
}

// remoteWrite sends one remote-write 1.0 request of n series with samples
// each (series named by batch) through client, with the headers hdr
// besides remote-write's own, and returns the answer's status and body.
func remoteWrite(t *testing.T, client *http.Client, url string, hdr http.Header, batch string, n, samples int, from int64) (int, string) {
	t.Helper()
	var req prompb.WriteRequest
	for i := 0; i < n; i++ {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "wiring_test_total"},
			{Name: "batch", Value: batch},
			{Name: "series", Value: strconv.Itoa(i)},
		}}
		for j := 0; j < samples; j++ {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: from + int64(j)*1000, Value: float64(i*samples + j)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	resp, body := harness.PostWrite(t, client, url, hdr, &req)
	return resp.StatusCode, string(body)
}

// waitMetric polls a /metrics page until it has the line want.
func waitMetric(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			for _, line := range strings.Split(last, "\n") {
				if line == want {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q; last:\n%s", url, want, last)
}
