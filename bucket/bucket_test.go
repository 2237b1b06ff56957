package bucket_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/internal/harness"
)

func TestValidate(t *testing.T) {
	s3 := bucket.S3Config{Endpoint: "127.0.0.1:9000", Bucket: "b", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}
	for _, tc := range []struct {
		name    string
		cfg     bucket.Config
		wantErr string // substring; "" means valid
	}{
		{"s3", bucket.Config{S3: s3}, ""},
		{"s3 without keys uses AWS chain", bucket.Config{S3: bucket.S3Config{Bucket: "b", Region: "eu-west-1"}}, ""},
		{"s3 http url", bucket.Config{S3: withEndpoint(s3, "http://127.0.0.1:9000")}, ""},
		{"s3 https url", bucket.Config{S3: withEndpoint(s3, "https://s3.example.com")}, ""},
		{"objstore file", bucket.Config{ObjstoreConfigFile: "/etc/objstore.yaml"}, ""},
		{"dir", bucket.Config{Dir: "/tmp/bucket"}, ""},

		{"nothing", bucket.Config{}, "STRATA_S3_BUCKET (with STRATA_S3_ENDPOINT, ...), STRATA_OBJSTORE_CONFIG_FILE or STRATA_BUCKET_DIR"},
		{"region alone is the default, not a choice", bucket.Config{S3: bucket.S3Config{Region: "us-east-1"}}, "none configured"},
		{"s3 and dir", bucket.Config{S3: s3, Dir: "/tmp/b"}, "STRATA_S3_BUCKET, STRATA_BUCKET_DIR are all set"},
		{"file and dir", bucket.Config{ObjstoreConfigFile: "f", Dir: "d"}, "STRATA_OBJSTORE_CONFIG_FILE, STRATA_BUCKET_DIR are all set"},
		{"all three", bucket.Config{S3: s3, ObjstoreConfigFile: "f", Dir: "d"}, "set exactly one of"},
		{"endpoint without bucket", bucket.Config{S3: bucket.S3Config{Endpoint: "h:1"}, Dir: "d"}, "STRATA_S3_ENDPOINT is set but STRATA_S3_BUCKET is empty"},
		{"keys without bucket", bucket.Config{S3: bucket.S3Config{AccessKey: "ak"}}, "STRATA_S3_ACCESS_KEY is set but STRATA_S3_BUCKET is empty"},
		{"path style without bucket", bucket.Config{S3: bucket.S3Config{PathStyle: true}, ObjstoreConfigFile: "f"}, "STRATA_S3_PATH_STYLE is set"},
		{"access key alone", bucket.Config{S3: bucket.S3Config{Bucket: "b", AccessKey: "ak"}}, "STRATA_S3_ACCESS_KEY and STRATA_S3_SECRET_KEY must be set together"},
		{"secret key alone", bucket.Config{S3: bucket.S3Config{Bucket: "b", SecretKey: "sk"}}, "must be set together"},
		{"https but insecure", bucket.Config{S3: func() bucket.S3Config { c := withEndpoint(s3, "https://h"); c.Insecure = true; return c }()}, "is https but STRATA_S3_INSECURE is true"},
		{"endpoint with path", bucket.Config{S3: withEndpoint(s3, "http://h:9000/bucket")}, "must be host[:port]"},
		{"endpoint bad scheme", bucket.Config{S3: withEndpoint(s3, "ftp://h")}, "scheme must be http or https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func withEndpoint(c bucket.S3Config, ep string) bucket.S3Config {
	c.Endpoint = ep
	return c
}

func TestConfigFromEnv(t *testing.T) {
	var cfg bucket.Config
	err := env.ParseWithOptions(&cfg, env.Options{Prefix: "STRATA_", Environment: map[string]string{
		"STRATA_S3_ENDPOINT":   "127.0.0.1:9000",
		"STRATA_S3_BUCKET":     "blocks",
		"STRATA_S3_ACCESS_KEY": "ak",
		"STRATA_S3_SECRET_KEY": "sk",
		"STRATA_S3_INSECURE":   "true",
		"STRATA_S3_PATH_STYLE": "true",
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := bucket.Config{S3: bucket.S3Config{Endpoint: "127.0.0.1:9000", Bucket: "blocks", Region: "us-east-1",
		AccessKey: "ak", SecretKey: "sk", Insecure: true, PathStyle: true}}
	if cfg != want {
		t.Fatalf("parsed %+v\nwant   %+v", cfg, want)
	}

	cfg = bucket.Config{}
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: "STRATA_", Environment: map[string]string{
		"STRATA_OBJSTORE_CONFIG_FILE": "/etc/objstore.yml",
		"STRATA_BUCKET_DIR":           "/data/bucket",
	}}); err != nil {
		t.Fatal(err)
	}
	if cfg.ObjstoreConfigFile != "/etc/objstore.yml" || cfg.Dir != "/data/bucket" {
		t.Fatalf("parsed %+v", cfg)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		cfg  bucket.Config
		want string
	}{
		{bucket.Config{S3: bucket.S3Config{Endpoint: "127.0.0.1:9000", Bucket: "b", Region: "us-east-1", AccessKey: "AK", SecretKey: "SECRET", Insecure: true, PathStyle: true}},
			"s3://b (endpoint http://127.0.0.1:9000, region us-east-1, path-style)"},
		{bucket.Config{S3: bucket.S3Config{Bucket: "b", Region: "eu-west-1"}},
			"s3://b (endpoint https://s3.eu-west-1.amazonaws.com, region eu-west-1)"},
		{bucket.Config{Dir: "/data/bucket"}, "filesystem:/data/bucket"},
		{bucket.Config{ObjstoreConfigFile: "/etc/o.yml"}, "objstore file /etc/o.yml"},
	} {
		if got := tc.cfg.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if strings.Contains(tc.cfg.String(), "SECRET") || strings.Contains(fmt.Sprint(tc.cfg), "SECRET") {
			t.Errorf("String() shows the secret: %q", tc.cfg.String())
		}
	}
}

// roundTrip uploads, lists, reads and deletes an object like the shipper
// and the bucket tools do.
func roundTrip(t *testing.T, bkt objstore.Bucket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "01JBLOCK00000000000000000/chunks/000001"
	if err := bkt.Upload(ctx, key, strings.NewReader("chunk data")); err != nil {
		t.Fatalf("upload: %v", err)
	}
	var names []string
	if err := bkt.Iter(ctx, "", func(name string) error { names = append(names, name); return nil }, objstore.WithRecursiveIter()); err != nil {
		t.Fatalf("iter: %v", err)
	}
	if len(names) != 1 || names[0] != key {
		t.Fatalf("iter = %q, want [%s]", names, key)
	}
	rc, err := bkt.Get(ctx, key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "chunk data" {
		t.Fatalf("get = %q, %v", b, err)
	}
	if _, err := bkt.Get(ctx, "missing"); !bkt.IsObjNotFoundErr(err) {
		t.Fatalf("get missing: %v, want not-found", err)
	}
	if err := bkt.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

func TestOpenFilesystem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	reg := prometheus.NewRegistry()
	bkt, err := bucket.Config{Dir: dir}.Open(context.Background(), nil, reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer bkt.Close()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Open did not create the directory: %v", err)
	}
	roundTrip(t, bkt)
	// Operations are counted, labelled with the component.
	if n, err := testutil.GatherAndCount(reg, "objstore_bucket_operations_total"); err != nil || n == 0 {
		t.Fatalf("objstore metrics not registered: %d, %v", n, err)
	}
	if !hasLabel(t, reg, "objstore_bucket_operations_total", "component", "test") {
		t.Fatal("bucket metrics lack the component label")
	}
}

func TestOpenS3(t *testing.T) {
	s3 := harness.StartS3(t)
	cfg := s3.BucketConfig()
	bkt, err := cfg.Open(context.Background(), nil, prometheus.NewRegistry(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer bkt.Close()
	if bkt.Name() != s3.Bucket {
		t.Fatalf("Name() = %q", bkt.Name())
	}
	roundTrip(t, bkt)

	// The same server through an endpoint written as a URL.
	cfg.S3.Endpoint, cfg.S3.Insecure = s3.Endpoint, false
	bkt2, err := cfg.Open(context.Background(), nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, bkt2)
}

func TestOpenObjstoreFile(t *testing.T) {
	s3 := harness.StartS3(t)
	file := filepath.Join(t.TempDir(), "objstore.yml")
	yaml := fmt.Sprintf(`type: S3
config:
  bucket: %s
  endpoint: %s
  region: %s
  access_key: %s
  secret_key: %s
  insecure: true
  bucket_lookup_type: path
`, s3.Bucket, s3.Addr, s3.Region, s3.AccessKey, s3.SecretKey)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	bkt, err := bucket.Config{ObjstoreConfigFile: file}.Open(context.Background(), nil, prometheus.NewRegistry(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer bkt.Close()
	roundTrip(t, bkt)
}

func TestOpenObjstoreFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("type: S3\nconfig:\n  no_such_field: 1\n"), 0o600)
	for name, file := range map[string]string{"missing file": filepath.Join(dir, "missing.yml"), "bad yaml": bad} {
		if _, err := (bucket.Config{ObjstoreConfigFile: file}).Open(context.Background(), nil, nil, "test"); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
	// The filesystem provider through YAML works too.
	good := filepath.Join(dir, "fs.yml")
	os.WriteFile(good, []byte("type: FILESYSTEM\nconfig:\n  directory: "+filepath.Join(dir, "bkt")+"\n"), 0o600)
	bkt, err := bucket.Config{ObjstoreConfigFile: good}.Open(context.Background(), nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, bkt)
}

func hasLabel(t *testing.T, g prometheus.Gatherer, metric, name, value string) bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == value {
					return true
				}
			}
		}
	}
	return false
}
