package bucket

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// TestKindExampleBucketFiles keeps the kind walkthrough's way of browsing
// its bucket (examples/kind/bucket.env, loaded after a port-forward to
// MinIO) consistent with what it browses: a valid S3 configuration for the
// port the README forwards, the bucket the chart's values write to and
// MinIO's Job creates, and the credentials of MinIO's Secret, path-style
// and over plain HTTP as MinIO behind a port-forward needs.
func TestKindExampleBucketFiles(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("../examples/kind/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfg := parseEnvFile(t, read("bucket.env"))
	if err := cfg.Validate(); err != nil {
		t.Fatalf("bucket.env is not a valid bucket configuration: %v", err)
	}
	host, insecure, err := cfg.S3.endpoint()
	if err != nil || !insecure || host != "127.0.0.1:9000" || !cfg.S3.PathStyle {
		t.Fatalf("bucket.env: endpoint %q insecure %v path-style %v (%v), want 127.0.0.1:9000 over HTTP, path-style", host, insecure, cfg.S3.PathStyle, err)
	}

	var values struct {
		Objstore struct {
			S3 struct {
				Bucket       string `yaml:"bucket"`
				Endpoint     string `yaml:"endpoint"`
				Secret       string `yaml:"existingSecret"`
				AccessKeyKey string `yaml:"accessKeyKey"`
				SecretKeyKey string `yaml:"secretKeyKey"`
			} `yaml:"s3"`
		} `yaml:"objstore"`
	}
	if err := yaml.Unmarshal([]byte(read("values-strata.yaml")), &values); err != nil {
		t.Fatal(err)
	}
	s3 := values.Objstore.S3
	if cfg.S3.Bucket != s3.Bucket {
		t.Errorf("bucket.env reads bucket %q, the block builders write to %q", cfg.S3.Bucket, s3.Bucket)
	}

	// MinIO's Secret (the one the block builders read too), its Service
	// and the Job that creates the bucket. The README forwards the
	// Service's S3 port to the same port on the machine.
	service, port, _ := strings.Cut(s3.Endpoint, ":")
	_, localPort, _ := strings.Cut(host, ":")
	if port != localPort {
		t.Errorf("the block builders reach MinIO on port %s, bucket.env on %s: the port-forward keeps the port", port, localPort)
	}
	var secret map[string]string
	servesS3 := false
	dec := yaml.NewDecoder(strings.NewReader(read("minio.yaml")))
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			StringData map[string]string `yaml:"stringData"`
			Spec       struct {
				Ports []struct {
					Name string `yaml:"name"`
					Port int    `yaml:"port"`
				} `yaml:"ports"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("minio.yaml: %v", err)
		}
		switch {
		case doc.Kind == "Secret" && doc.Metadata.Name == s3.Secret:
			secret = doc.StringData
		case doc.Kind == "Service" && doc.Metadata.Name == service:
			for _, p := range doc.Spec.Ports {
				servesS3 = servesS3 || strconv.Itoa(p.Port) == port
			}
		}
	}
	if secret == nil || cfg.S3.AccessKey != secret[s3.AccessKeyKey] || cfg.S3.SecretKey != secret[s3.SecretKeyKey] {
		t.Errorf("bucket.env's credentials %q/%q are not those of MinIO's Secret %q: %v", cfg.S3.AccessKey, cfg.S3.SecretKey, s3.Secret, secret)
	}
	if !servesS3 {
		t.Errorf("minio.yaml has no Service %s with port %s, the chart's endpoint", service, port)
	}
	if !strings.Contains(read("minio.yaml"), "s3://"+cfg.S3.Bucket) {
		t.Errorf("minio.yaml's Job does not create bucket %q", cfg.S3.Bucket)
	}
	readme := read("README.md")
	for _, want := range []string{"kubectl -n strata port-forward service/" + service + " " + port, "set -a; . examples/kind/bucket.env; set +a", "strata bucket ls", "strata bucket web"} {
		if !strings.Contains(readme, want) {
			t.Errorf("examples/kind/README.md does not say %q", want)
		}
	}
}

// parseEnvFile reads a file of VAR=value lines (and # comments), as a
// shell sources it with set -a, into a Config as strata would.
func parseEnvFile(t *testing.T, text string) Config {
	t.Helper()
	vars := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		vars[k] = v
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: "STRATA_", Environment: vars}); err != nil {
		t.Fatal(err)
	}
	return cfg
}
