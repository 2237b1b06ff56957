package bucket

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-kit/log"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/bos"
	"github.com/thanos-io/objstore/providers/cos"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/objstore/providers/obs"
	"github.com/thanos-io/objstore/providers/oci"
	"github.com/thanos-io/objstore/providers/oss"
	"github.com/thanos-io/objstore/providers/s3"
	"github.com/thanos-io/objstore/providers/swift"
	"gopkg.in/yaml.v2"
)

// objstoreFile is a Thanos --objstore.config-file, read as objstore's own
// client package reads it (strict YAML, type case-insensitive).
//
// That package is not used because it links every provider, and Google's
// (its gRPC, xDS and their protobuf registrations) costs each Strata
// process about 17 MB of memory before it does anything: more than a
// fifth of a block builder's fixed cost. Native GCS is a build option
// instead (the gcs tag); GCS also serves the S3 API.
type objstoreFile struct {
	Type   objstore.ObjProvider `yaml:"type"`
	Config any                  `yaml:"config"`
	Prefix string               `yaml:"prefix"`
}

// provider opens a bucket of one type from its config section, as YAML.
type provider func(logger log.Logger, conf []byte, component string) (objstore.Bucket, error)

var noWrap func(http.RoundTripper) http.RoundTripper

// providers are the objstore types this build opens. Each costs the
// binary little but its client; see objstoreFile for the one left out.
var providers = map[objstore.ObjProvider]provider{
	objstore.S3: func(l log.Logger, c []byte, comp string) (objstore.Bucket, error) {
		return s3.NewBucket(l, c, comp, noWrap)
	},
	objstore.AZURE: func(l log.Logger, c []byte, comp string) (objstore.Bucket, error) {
		return azure.NewBucket(l, c, comp, noWrap)
	},
	objstore.SWIFT: func(l log.Logger, c []byte, _ string) (objstore.Bucket, error) {
		return swift.NewContainer(l, c, noWrap)
	},
	objstore.COS: func(l log.Logger, c []byte, comp string) (objstore.Bucket, error) {
		return cos.NewBucket(l, c, comp, noWrap)
	},
	objstore.ALIYUNOSS: func(l log.Logger, c []byte, comp string) (objstore.Bucket, error) {
		return oss.NewBucket(l, c, comp, noWrap)
	},
	objstore.BOS: func(l log.Logger, c []byte, comp string) (objstore.Bucket, error) {
		return bos.NewBucket(l, c, comp)
	},
	objstore.OCI: func(l log.Logger, c []byte, _ string) (objstore.Bucket, error) {
		return oci.NewBucket(l, c, noWrap)
	},
	objstore.OBS: func(l log.Logger, c []byte, _ string) (objstore.Bucket, error) {
		return obs.NewBucket(l, c)
	},
	objstore.FILESYSTEM: func(_ log.Logger, c []byte, _ string) (objstore.Bucket, error) {
		return filesystem.NewBucketFromConfig(c)
	},
}

// openObjstoreFile opens the bucket an objstore YAML describes.
func openObjstoreFile(logger log.Logger, content []byte, component string) (objstore.Bucket, error) {
	var f objstoreFile
	if err := yaml.UnmarshalStrict(content, &f); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	typ := objstore.ObjProvider(strings.ToUpper(string(f.Type)))
	open, ok := providers[typ]
	if !ok {
		return nil, unknownProvider(f.Type)
	}
	conf, err := yaml.Marshal(f.Config)
	if err != nil {
		return nil, fmt.Errorf("%s config: %w", typ, err)
	}
	bkt, err := open(logger, conf, component)
	if err != nil {
		return nil, fmt.Errorf("create %s client: %w", typ, err)
	}
	return objstore.NewPrefixedBucket(bkt, f.Prefix), nil
}

func unknownProvider(typ objstore.ObjProvider) error {
	var known []string
	for t := range providers {
		known = append(known, string(t))
	}
	slices.Sort(known)
	err := fmt.Errorf("bucket type %q is not supported: use one of %s", typ, strings.Join(known, ", "))
	if strings.EqualFold(string(typ), string(objstore.GCS)) {
		err = fmt.Errorf("%w; this build has no native GCS client (build with `-tags gcs` for one), but GCS serves the S3 API: type S3 with endpoint storage.googleapis.com and an HMAC key", err)
	}
	return err
}
