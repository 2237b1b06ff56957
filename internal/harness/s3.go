// A real S3 server (versitygw on a posix directory) for a test.

package harness

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratametrics/strata/bucket"
)

// S3 is a versitygw S3 gateway serving one empty bucket from a fresh
// directory, on a free loopback port. Clients must use path-style
// addressing. Its posix storage maps keys to paths, so it refuses keys
// "x" and "x/y" side by side (Thanos' layout never does that).
type S3 struct {
	// Endpoint is the URL, http://127.0.0.1:<port>.
	Endpoint string
	// Addr is 127.0.0.1:<port>.
	Addr      string
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	// Dir is the gateway's root directory; the bucket is Dir/<Bucket>.
	Dir string

	t    testing.TB
	proc *Process
}

// s3StartTimeout bounds the wait for the gateway; it answers within a
// second.
const s3StartTimeout = 15 * time.Second

// StartS3 starts versitygw (see Tool) and creates the bucket. It is
// stopped when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := Tool(t, "versitygw")
	addr := FreeAddr(t)
	s := &S3{
		Endpoint:  "http://" + addr,
		Addr:      addr,
		Bucket:    "strata-test",
		Region:    "us-east-1",
		AccessKey: "strata-test-access",
		SecretKey: "strata-test-secret",
		Dir:       t.TempDir(),
		t:         t,
	}
	s.proc = StartProcess(t, bin, []string{"--port", addr, "posix", s.Dir}, []string{
		"ROOT_ACCESS_KEY=" + s.AccessKey,
		"ROOT_SECRET_KEY=" + s.SecretKey,
		"VGW_REGION=" + s.Region,
	})
	s.waitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("s3: create bucket %s: %v", s.Bucket, err)
	}
	return s
}

// waitReady waits until the gateway answers HTTP at all: unauthenticated
// requests get 403, which is an answer.
func (s *S3) waitReady(t testing.TB) {
	t.Helper()
	if err := s.proc.WaitAnswer(s.Endpoint+"/", s3StartTimeout, func(int) bool { return true }); err != nil {
		t.Fatalf("s3: %v", err)
	}
}

// Stop stops the gateway, for outage tests. Its data stays.
func (s *S3) Stop() { s.proc.Stop() }

// Start starts the gateway again after Stop, on the same port with the
// same data, and waits until it answers. Like StartS3 it fails the test
// StartS3 was given.
func (s *S3) Start() {
	s.t.Helper()
	s.proc.Start()
	s.waitReady(s.t)
}

// Process is the gateway's process, for Kill, Pid, Logs...
func (s *S3) Process() *Process { return s.proc }

// BucketConfig configures Strata's bucket package for this server.
func (s *S3) BucketConfig() bucket.Config {
	return bucket.Config{S3: bucket.S3Config{
		Endpoint:  s.Addr,
		Bucket:    s.Bucket,
		Region:    s.Region,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		Insecure:  true,
		PathStyle: true,
	}}
}

// Env is BucketConfig as the STRATA_S3_* variables of a strata process.
func (s *S3) Env() []string {
	return []string{
		"STRATA_S3_ENDPOINT=" + s.Addr,
		"STRATA_S3_BUCKET=" + s.Bucket,
		"STRATA_S3_REGION=" + s.Region,
		"STRATA_S3_ACCESS_KEY=" + s.AccessKey,
		"STRATA_S3_SECRET_KEY=" + s.SecretKey,
		"STRATA_S3_INSECURE=true",
		"STRATA_S3_PATH_STYLE=true",
	}
}

// Client is an AWS SDK client for this server, for tests that look at raw
// objects. It reads no AWS configuration from the environment or files.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, Source: "harness"}, nil
		}),
		// Only the checksums S3 itself requires: S3-compatible servers
		// differ on the newer optional ones.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}
