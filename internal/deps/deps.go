//go:build tools

// Package deps pins the project's chosen libraries in go.mod while the
// packages that use them are being written, so that parallel work never
// needs to edit go.mod at the same time.
package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/caarlos0/env/v11"
	_ "github.com/cespare/xxhash/v2"
	_ "github.com/klauspost/compress/snappy"
	_ "github.com/oklog/ulid/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/prometheus/prompb"
	_ "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	_ "github.com/prometheus/prometheus/promql"
	_ "github.com/prometheus/prometheus/storage/remote"
	_ "github.com/prometheus/prometheus/tsdb"
	_ "github.com/thanos-io/objstore"
	_ "github.com/thanos-io/objstore/client"
	_ "github.com/thanos-io/objstore/providers/filesystem"
	_ "github.com/thanos-io/objstore/providers/s3"
	_ "go.yaml.in/yaml/v3"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/encoding/protowire"
)
