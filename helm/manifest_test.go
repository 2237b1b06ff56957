// The subset of Kubernetes objects the tests read from rendered manifests,
// parsed without Kubernetes' own types (which are not among the module's
// dependencies).

package helm

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Generation  int64             `yaml:"generation"`
}

// object is one rendered document: its kind and name, and the document
// itself to decode into a type of its kind.
type object struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	doc        *yaml.Node
	text       string
}

func (o *object) String() string { return o.Kind + "/" + o.Metadata.Name }

// decode fills v from the whole document.
func (o *object) decode(t testing.TB, v any) {
	t.Helper()
	if err := o.doc.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", o, err)
	}
}

type manifest []*object

// parseManifest splits a multi-document YAML stream (helm template's
// output) into objects, skipping empty documents.
func parseManifest(t testing.TB, data string) manifest {
	t.Helper()
	var m manifest
	dec := yaml.NewDecoder(strings.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse manifest: %v\n%s", err, data)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		o := &object{doc: &doc}
		if err := doc.Decode(o); err != nil {
			t.Fatalf("parse manifest object: %v", err)
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			t.Fatalf("re-encode %s: %v", o, err)
		}
		o.text = buf.String()
		m = append(m, o)
	}
	return m
}

// find returns the only object of kind whose name ends with suffix.
func (m manifest) find(t testing.TB, kind, suffix string) *object {
	t.Helper()
	var found []*object
	for _, o := range m {
		if o.Kind == kind && strings.HasSuffix(o.Metadata.Name, suffix) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s named *%s in the manifest, found %d: %v", kind, suffix, len(found), found)
	}
	return found[0]
}

// byName returns the object of kind named name, or nil.
func (m manifest) byName(kind, name string) *object {
	for _, o := range m {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

func (m manifest) ofKind(kind string) []*object {
	var out []*object
	for _, o := range m {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// matches reports whether a set of labels is selected; an empty selector
// selects nothing here, as none of the chart's may be empty.
func (s labelSelector) matches(labels map[string]string) bool {
	return selects(s.MatchLabels, labels)
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type workload struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Replicas             *int          `yaml:"replicas"`
		ServiceName          string        `yaml:"serviceName"`
		PodManagementPolicy  string        `yaml:"podManagementPolicy"`
		Selector             labelSelector `yaml:"selector"`
		Template             podTemplate   `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata objectMeta `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type podTemplate struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     podSpec    `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsUser    *int  `yaml:"runAsUser"`
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []volume    `yaml:"volumes"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env          []envVar      `yaml:"env"`
	VolumeMounts []volumeMount `yaml:"volumeMounts"`
	// Probes are checked against the running binaries.
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
}

// port returns the containerPort named name, or 0.
func (c *container) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// env returns the plain value of the variable name and whether it is set
// (by value; see resolveEnv for valueFrom).
func (c *container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

type probe struct {
	HTTPGet   *httpGetAction `yaml:"httpGet"`
	TCPSocket *struct {
		Port yaml.Node `yaml:"port"`
	} `yaml:"tcpSocket"`
}

type httpGetAction struct {
	Path string `yaml:"path"`
	// Port is a name or a number.
	Port yaml.Node `yaml:"port"`
	// Scheme is HTTP (also when empty) or HTTPS.
	Scheme string `yaml:"scheme"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
	} `yaml:"valueFrom"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type keyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string      `yaml:"name"`
		Items []keyToPath `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string      `yaml:"secretName"`
		Items      []keyToPath `yaml:"items"`
	} `yaml:"secret"`
	EmptyDir              *struct{} `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type service struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type configMap struct {
	Metadata objectMeta        `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type secret struct {
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

// files returns the secret's content as the kubelet writes it to a volume.
func (s *secret) files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range s.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("secret %s key %s: %w", s.Metadata.Name, k, err)
		}
		out[k] = b
	}
	// stringData wins over data, as in the API server.
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out, nil
}

// serviceMonitor is the part of a monitoring.coreos.com/v1 ServiceMonitor
// the tests read.
type serviceMonitor struct {
	Spec struct {
		Selector  labelSelector `yaml:"selector"`
		Endpoints []struct {
			Port        string          `yaml:"port"`
			Path        string          `yaml:"path"`
			Scheme      string          `yaml:"scheme"`
			Relabelings []relabelConfig `yaml:"relabelings"`
			TLSConfig   *struct {
				ServerName string `yaml:"serverName"`
				CA         struct {
					Secret *keyRef `yaml:"secret"`
				} `yaml:"ca"`
				Cert struct {
					Secret *keyRef `yaml:"secret"`
				} `yaml:"cert"`
				KeySecret          *keyRef `yaml:"keySecret"`
				InsecureSkipVerify bool    `yaml:"insecureSkipVerify"`
			} `yaml:"tlsConfig"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

// relabelConfig is one of Prometheus' relabeling rules.
type relabelConfig struct {
	SourceLabels []string `yaml:"sourceLabels"`
	Separator    string   `yaml:"separator"`
	Regex        string   `yaml:"regex"`
	Action       string   `yaml:"action"`
}

type pdb struct {
	Spec struct {
		MaxUnavailable yaml.Node     `yaml:"maxUnavailable"`
		MinAvailable   yaml.Node     `yaml:"minAvailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func yamlUnmarshal(data []byte, v any) error { return yaml.Unmarshal(data, v) }
