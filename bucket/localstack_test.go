package bucket

import (
	"os"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// TestLocalStackFiles keeps localstack/ consistent: its env file must parse
// into a valid S3 configuration that points at the port the compose file
// publishes and the bucket its init script creates, with the settings
// LocalStack needs (path-style, plain HTTP, us-east-1). The S3 code path
// itself is proven against versitygw in the other tests.
func TestLocalStackFiles(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("../localstack/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(read("strata.env"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("strata.env: bad line %q", line)
		}
		vars[k] = v
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: "STRATA_", Environment: vars}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("strata.env is not a valid bucket configuration: %v", err)
	}
	s3 := cfg.S3
	if !s3.PathStyle || !s3.Insecure || s3.Region != "us-east-1" || s3.AccessKey == "" || s3.SecretKey == "" {
		t.Fatalf("strata.env lacks what LocalStack needs: %+v", s3)
	}
	host, insecure, err := s3.endpoint()
	if err != nil || !insecure || host != "127.0.0.1:4566" {
		t.Fatalf("endpoint %q insecure %v err %v, want 127.0.0.1:4566 over HTTP", host, insecure, err)
	}
	if compose := read("docker-compose.yml"); !strings.Contains(compose, `"127.0.0.1:4566:4566"`) {
		t.Fatal("docker-compose.yml does not publish 127.0.0.1:4566")
	}
	if init := read("init-s3.sh"); !strings.Contains(init, "s3://"+s3.Bucket) {
		t.Fatalf("init-s3.sh does not create bucket %q", s3.Bucket)
	}
}
