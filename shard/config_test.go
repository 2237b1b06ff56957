package shard

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// thanosExample is the example of the Thanos Receive documentation, which
// must load as written.
const thanosExample = `[
{"hashring": "tenant-a", "endpoints": ["tenant-a-1.metrics.local:19291/api/v1/receive", "tenant-a-2.metrics.local:19291/api/v1/receive"], "tenants": ["tenant-a"]},
{"hashring": "tenants-b-c", "endpoints": ["tenant-b-c-1.metrics.local:19291/api/v1/receive", "tenant-b-c-2.metrics.local:19291/api/v1/receive"], "tenants": ["tenant-b", "tenant-c"]},
{"hashring": "soft-tenants", "endpoints": ["http://soft-tenants-1.metrics.local:19291/api/v1/receive"]}
]`

func TestParseConfigThanosExample(t *testing.T) {
	cfgs, err := ParseConfig([]byte(thanosExample))
	if err != nil {
		t.Fatal(err)
	}
	want := []HashringConfig{
		{Name: "tenant-a", Tenants: []string{"tenant-a"}, Endpoints: []Endpoint{
			{Address: "tenant-a-1.metrics.local:19291"}, {Address: "tenant-a-2.metrics.local:19291"}}},
		{Name: "tenants-b-c", Tenants: []string{"tenant-b", "tenant-c"}, Endpoints: []Endpoint{
			{Address: "tenant-b-c-1.metrics.local:19291"}, {Address: "tenant-b-c-2.metrics.local:19291"}}},
		{Name: "soft-tenants", Endpoints: []Endpoint{{Address: "soft-tenants-1.metrics.local:19291", Scheme: "http"}}},
	}
	if !reflect.DeepEqual(cfgs, want) {
		t.Fatalf("got  %+v\nwant %+v", cfgs, want)
	}

	ring, err := NewRing(cfgs, Options{ReplicationFactor: 1})
	if err != nil {
		t.Fatalf("RF=1: %v", err)
	}
	for tenant, hashring := range map[string]string{
		"tenant-a": "tenant-a", "tenant-b": "tenants-b-c", "tenant-c": "tenants-b-c", "anyone-else": "soft-tenants",
	} {
		h, err := ring.ForTenant(tenant)
		if err != nil || h.Name() != hashring {
			t.Errorf("ForTenant(%q) = %v, %v; want hashring %q", tenant, h, err, hashring)
		}
	}
	if got := len(ring.Endpoints()); got != 5 {
		t.Errorf("%d endpoints, want 5", got)
	}

	_, err = NewRing(cfgs, Options{ReplicationFactor: 2})
	wantErr := `hashring "soft-tenants": replication factor 2 needs at least 2 endpoints, it has 1`
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("RF=2: got %v, want an error containing %q", err, wantErr)
	}
	if strings.Contains(err.Error(), `"tenant-a"`) {
		t.Errorf("RF=2: error blames a hashring with enough endpoints: %v", err)
	}
}

func TestParseConfigForms(t *testing.T) {
	cfgs, err := ParseConfig([]byte(`[{
		"hashring": "zoned",
		"tenants": ["team-*"],
		"tenant_matcher_type": "glob",
		"algorithm": "hashmod",
		"external_labels": {"region": "eu"},
		"endpoints": [
			"a:1",
			{"address": "B:2", "az": "z1"},
			{"address": "https://c:3/api/v1/receive", "az": "z2", "capnproto_address": "c:19391"},
			" [::1]:04 "
		]
	}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []HashringConfig{{
		Name: "zoned", Tenants: []string{"team-*"}, TenantMatcherType: "glob", Algorithm: "hashmod",
		ExternalLabels: map[string]string{"region": "eu"},
		Endpoints:      []Endpoint{{Address: "a:1"}, {Address: "b:2", AZ: "z1"}, {Address: "c:3", AZ: "z2", Scheme: "https"}, {Address: "[::1]:4"}},
	}}
	if !reflect.DeepEqual(cfgs, want) {
		t.Fatalf("got  %+v\nwant %+v", cfgs, want)
	}
}

// Every validation error names what to fix.
func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"empty file", "", []string{"the hashrings file is empty"}},
		{"blank file", " \n\t", []string{"the hashrings file is empty"}},
		{"not an array", `{"hashring": "a"}`, []string{"must be a JSON array", `starts with "{"`}},
		{"empty array", `[]`, []string{"no hashrings"}},
		{"null", `null`, []string{"must be a JSON array"}},
		{"syntax error", "[\n{\"hashring\": \"a\",}\n]", []string{"line 2, column 18", "invalid character"}},
		{"trailing data", `[{"hashring":"a","endpoints":["a:1"]}] x`, []string{"invalid character 'x' after top-level value"}},
		{"element not an object", `[1]`, []string{"hashrings[0] (unnamed)", "cannot unmarshal number"}},
		{"unknown field", `[{"hashring": "a", "endpoints": ["a:1"], "tenant": ["x"]}]`,
			[]string{`hashring "a": unknown field "tenant"`, "known fields: hashring, tenants"}},
		{"shuffle sharding", `[{"hashring": "a", "endpoints": ["a:1"], "shuffle_sharding_config": {"shard_size": 2}}]`,
			[]string{`hashring "a": shuffle_sharding_config is not supported`}},
		{"unknown endpoint field", `[{"hashring": "a", "endpoints": [{"address": "a:1", "zone": "z"}]}]`,
			[]string{`hashring "a": endpoint {"address": "a:1", "zone": "z"}`, `unknown field "zone"`, "known fields: address, az"}},
		{"endpoint of wrong type", `[{"hashring": "a", "endpoints": [7]}]`,
			[]string{`hashring "a": endpoint 7: want a string "host:port" or an object`}},
		{"no endpoints", `[{"hashring": "a"}]`, []string{`hashring "a": no endpoints`}},
		{"empty endpoints", `[{"hashring": "a", "endpoints": []}]`, []string{`hashring "a": no endpoints`}},
		{"empty address", `[{"hashring": "a", "endpoints": [""]}]`, []string{`hashring "a": endpoint "": address is empty`}},
		{"no port", `[{"hashring": "a", "endpoints": ["http://host/api/v1/receive"]}]`,
			[]string{`hashring "a": endpoint "http://host/api/v1/receive": no port; write host:port, e.g. host:19291`}},
		{"bad port", `[{"hashring": "a", "endpoints": ["host:http"]}]`, []string{`endpoint "host:http": port "http" is not a number`}},
		{"port zero", `[{"hashring": "a", "endpoints": ["host:0"]}]`, []string{`endpoint "host:0": port "0" is not a number`}},
		{"port too big", `[{"hashring": "a", "endpoints": ["host:65536"]}]`, []string{`port "65536" is not a number`}},
		{"no host", `[{"hashring": "a", "endpoints": [":19291"]}]`, []string{`endpoint ":19291": no host`}},
		{"bad scheme", `[{"hashring": "a", "endpoints": ["grpc://host:1"]}]`, []string{`endpoint "grpc://host:1": scheme "grpc" is not supported`}},
		{"credentials", `[{"hashring": "a", "endpoints": ["http://u:p@host:1"]}]`, []string{"credentials"}},
		{"endpoint with two schemes", `[{"hashring": "a", "tenants": ["t"], "endpoints": ["https://x:1"]}, {"hashring": "b", "endpoints": ["x:1"]}]`,
			[]string{`endpoint "x:1" is written https:// in hashring "a" but host:port in hashring "b"`}},
		{"space in host", `[{"hashring": "a", "endpoints": ["ho st:1"]}]`, []string{`host "ho st" has characters`}},
		{"duplicate endpoint", `[{"hashring": "a", "endpoints": ["x:1", "http://X:1/api/v1/receive"]}]`,
			[]string{`hashring "a": endpoint "x:1" is listed twice`}},
		{"endpoint in two zones", `[{"hashring": "a", "tenants": ["t"], "endpoints": [{"address": "x:1", "az": "z1"}]}, {"hashring": "b", "endpoints": [{"address": "x:1", "az": "z2"}]}]`,
			[]string{`endpoint "x:1" has az "z1" in hashring "a" but az "z2" in hashring "b"`}},
		{"unknown algorithm", `[{"hashring": "a", "endpoints": ["x:1"], "algorithm": "rendezvous"}]`,
			[]string{`hashring "a": algorithm "rendezvous" is unknown; use "ketama" or "hashmod"`}},
		{"unknown matcher", `[{"hashring": "a", "endpoints": ["x:1"], "tenants": ["t"], "tenant_matcher_type": "regex"}]`,
			[]string{`hashring "a": tenant_matcher_type "regex" is unknown`}},
		{"bad glob", `[{"hashring": "a", "endpoints": ["x:1"], "tenants": ["team-[a"], "tenant_matcher_type": "glob"}]`,
			[]string{`hashring "a": tenant pattern "team-[a": syntax error in pattern`, "path.Match"}},
		{"empty tenant", `[{"hashring": "a", "endpoints": ["x:1"], "tenants": ["t", ""]}]`, []string{`hashring "a": tenants[1] is empty`}},
		{"duplicate name", `[{"hashring": "a", "tenants": ["t"], "endpoints": ["x:1"]}, {"hashring": "a", "endpoints": ["y:1"]}]`,
			[]string{`hashring "a" is defined twice (hashrings[0] and hashrings[1])`}},
		{"two unnamed", `[{"tenants": ["t"], "endpoints": ["x:1"]}, {"endpoints": ["y:1"]}]`,
			[]string{`hashrings[0] and hashrings[1] both have no name`}},
		{"tenant in two hashrings", `[{"hashring": "a", "tenants": ["t", "u"], "endpoints": ["x:1"]}, {"hashring": "b", "tenants": ["u"], "endpoints": ["y:1"]}]`,
			[]string{`tenant "u" is claimed by hashring "a" and hashring "b"`}},
		{"hashring after a soft one", `[{"hashring": "soft", "endpoints": ["x:1"]}, {"hashring": "b", "tenants": ["u"], "endpoints": ["y:1"]}]`,
			[]string{`hashring "b" can never be chosen: hashring "soft" before it has no tenants`}},
		{"bad external label", `[{"hashring": "a", "endpoints": ["x:1"], "external_labels": {"": "v"}}]`,
			[]string{`hashring "a": external_labels: label name "" is not valid`}},
		{"several problems at once", `[{"hashring": "a", "tenants": ["t"]}, {"hashring": "b", "endpoints": ["x:1"], "algorithm": "x"}]`,
			[]string{`hashring "a": no endpoints`, `hashring "b": algorithm "x" is unknown`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.file))
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// Configs built in code get the same checks and normalisation as parsed ones.
func TestNewRingValidates(t *testing.T) {
	good := []HashringConfig{{Name: "a", Endpoints: []Endpoint{{Address: "http://X:1/api/v1/receive"}, {Address: "y:2"}}}}
	r, err := NewRing(good, Options{ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Endpoints(); !reflect.DeepEqual(got, []Endpoint{{Address: "x:1", Scheme: "http"}, {Address: "y:2"}}) {
		t.Errorf("endpoints %v", got)
	}
	if good[0].Endpoints[0].Address != "http://X:1/api/v1/receive" {
		t.Errorf("NewRing modified its argument: %v", good)
	}

	// Under TLS, https:// and host:port endpoints load.
	tlsRing, err := NewRing([]HashringConfig{{Name: "a", Endpoints: []Endpoint{{Address: "https://x:1"}, {Address: "y:2"}}}}, Options{ReplicationFactor: 1, TLS: true})
	if err != nil {
		t.Fatalf("https:// and host:port under TLS: %v", err)
	}
	if got := tlsRing.Endpoints(); !reflect.DeepEqual(got, []Endpoint{{Address: "x:1", Scheme: "https"}, {Address: "y:2"}}) {
		t.Errorf("endpoints under TLS %v", got)
	}

	zoned := []HashringConfig{{Name: "z", Algorithm: "hashmod", Endpoints: []Endpoint{{Address: "x:1", AZ: "a"}, {Address: "y:1", AZ: "b"}}}}
	for _, tc := range []struct {
		name string
		cfgs []HashringConfig
		opts Options
		want string
	}{
		{"no hashrings", nil, Options{ReplicationFactor: 1}, "no hashrings"},
		{"rf zero", good, Options{}, "replication factor must be at least 1, got 0"},
		{"rf negative", good, Options{ReplicationFactor: -1}, "replication factor must be at least 1, got -1"},
		{"rf above endpoints", good, Options{ReplicationFactor: 3}, `hashring "a": replication factor 3 needs at least 3 endpoints, it has 2`},
		{"unknown default algorithm", good, Options{ReplicationFactor: 1, DefaultAlgorithm: "maglev"}, `default hashring algorithm "maglev" is unknown`},
		{"hashmod with zones", zoned, Options{ReplicationFactor: 1}, `hashring "z": algorithm hashmod cannot spread replicas over zones`},
		{"default hashmod with zones", []HashringConfig{{Name: "z", Endpoints: zoned[0].Endpoints}}, Options{ReplicationFactor: 1, DefaultAlgorithm: "hashmod"}, "cannot spread replicas over zones"},
		{"bad address", []HashringConfig{{Name: "a", Endpoints: []Endpoint{{Address: "nohost"}}}}, Options{ReplicationFactor: 1}, `hashring "a": endpoint "nohost": no port`},
		{"http:// when forwarding over TLS", good, Options{ReplicationFactor: 1, TLS: true},
			`hashring "a": endpoint "http://x:1" is written http://, but the router forwards over TLS (STRATA_FORWARD_TLS_*); write https:// or host:port`},
		{"scheme set in code", []HashringConfig{{Name: "a", Endpoints: []Endpoint{{Address: "x:1", Scheme: "grpc"}}}}, Options{ReplicationFactor: 1}, `endpoint "x:1": scheme "grpc" is not supported`},
		{"scheme set in code and written", []HashringConfig{{Name: "a", Endpoints: []Endpoint{{Address: "https://x:1", Scheme: "http"}}}}, Options{ReplicationFactor: 1}, `has scheme "http" and an address written https://`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRing(tc.cfgs, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEndpointUnmarshalJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Endpoint
		err  string
	}{
		{`"host:19291"`, Endpoint{Address: "host:19291"}, ""},
		{`"HOST.Example:19291"`, Endpoint{Address: "host.example:19291"}, ""},
		{`"http://host:19291/api/v1/receive"`, Endpoint{Address: "host:19291", Scheme: "http"}, ""},
		{`"HTTPS://Host:19291"`, Endpoint{Address: "host:19291", Scheme: "https"}, ""},
		{`{"address": "https://host:1", "az": "eu-1a"}`, Endpoint{Address: "host:1", AZ: "eu-1a", Scheme: "https"}, ""},
		{`"host:19291/api/v1/receive?x=1"`, Endpoint{Address: "host:19291"}, ""},
		{`"10.0.0.1:19291"`, Endpoint{Address: "10.0.0.1:19291"}, ""},
		{`"[2001:db8::1]:19291"`, Endpoint{Address: "[2001:db8::1]:19291"}, ""},
		{`{"address": "host:1", "az": "eu-1a"}`, Endpoint{Address: "host:1", AZ: "eu-1a"}, ""},
		{`{"address": "host:1"}`, Endpoint{Address: "host:1"}, ""},
		{`{"az": "eu-1a"}`, Endpoint{}, "address is empty"},
		{`null`, Endpoint{}, "address is empty"},
		{`"2001:db8::1:19291"`, Endpoint{}, "too many colons"},
		{`true`, Endpoint{}, "want a string"},
	} {
		var got Endpoint
		err := json.Unmarshal([]byte(tc.in), &got)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, want an error containing %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%s: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestForTenant(t *testing.T) {
	cfgs, err := ParseConfig([]byte(`[
		{"hashring": "exact", "tenants": ["acme", "team-special"], "endpoints": ["e1:1"]},
		{"hashring": "teams", "tenants": ["team-*", "ops-?"], "tenant_matcher_type": "glob", "endpoints": ["g1:1"]},
		{"hashring": "late-exact", "tenants": ["team-late", "zeta"], "endpoints": ["l1:1"]},
		{"hashring": "soft", "endpoints": ["s1:1", "e1:1"]}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewRing(cfgs, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tenant, want string }{
		{"acme", "exact"},
		{"team-special", "exact"}, // listed exactly before the glob hashring
		{"team-red", "teams"},
		{"ops-1", "teams"},
		{"ops-12", "soft"},
		{"team-late", "teams"}, // first match wins: the glob comes before the exact listing
		{"zeta", "late-exact"},
		{"Acme", "soft"}, // exact is exact
		{"", "soft"},
		{"anyone", "soft"},
	} {
		h, err := ring.ForTenant(tc.tenant)
		if err != nil {
			t.Errorf("ForTenant(%q): %v", tc.tenant, err)
			continue
		}
		if h.Name() != tc.want {
			t.Errorf("ForTenant(%q) = %q, want %q", tc.tenant, h.Name(), tc.want)
		}
	}

	hard, err := NewRing(cfgs[:3], DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, err = hard.ForTenant("anyone")
	if !errors.Is(err, ErrUnknownTenant) || !strings.Contains(err.Error(), `tenant "anyone"`) {
		t.Errorf("unknown tenant: got %v, want ErrUnknownTenant naming the tenant", err)
	}
	if h, err := hard.ForTenant("team-blue"); err != nil || h.Name() != "teams" {
		t.Errorf("ForTenant(team-blue) = %v, %v", h, err)
	}
}

func TestRingEndpointIDs(t *testing.T) {
	// One endpoint may serve several hashrings; it is one ID.
	cfgs, err := ParseConfig([]byte(`[
		{"hashring": "a", "tenants": ["a"], "endpoints": ["c:1", "b:1"], "external_labels": {"team": "a"}},
		{"hashring": "b", "endpoints": ["d:1", "b:1/api/v1/receive", "a:1"], "algorithm": "hashmod"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewRing(cfgs, Options{ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{{Address: "a:1"}, {Address: "b:1"}, {Address: "c:1"}, {Address: "d:1"}}
	if !reflect.DeepEqual(ring.Endpoints(), want) {
		t.Fatalf("endpoints %v, want %v", ring.Endpoints(), want)
	}
	hs := ring.Hashrings()
	if len(hs) != 2 || hs[0].Name() != "a" || hs[1].Name() != "b" {
		t.Fatalf("hashrings %v", hs)
	}
	if got := hs[0].Endpoints(); !reflect.DeepEqual(got, []int{2, 1}) {
		t.Errorf("a: endpoint IDs %v, want [2 1]", got)
	}
	if got := hs[1].Endpoints(); !reflect.DeepEqual(got, []int{3, 1, 0}) {
		t.Errorf("b: endpoint IDs %v, want [3 1 0]", got)
	}
	if hs[0].Algorithm() != "ketama" || hs[1].Algorithm() != "hashmod" {
		t.Errorf("algorithms %s, %s", hs[0].Algorithm(), hs[1].Algorithm())
	}
	if hs[0].TenantMatcherType() != "exact" || hs[0].ReplicationFactor() != 2 {
		t.Errorf("matcher %q, rf %d", hs[0].TenantMatcherType(), hs[0].ReplicationFactor())
	}
	if !reflect.DeepEqual(hs[0].ExternalLabels(), map[string]string{"team": "a"}) || hs[1].ExternalLabels() != nil {
		t.Errorf("external labels %v, %v", hs[0].ExternalLabels(), hs[1].ExternalLabels())
	}
	// Owners of each hashring are its own endpoints.
	for _, h := range hs {
		mine := map[int]bool{}
		for _, id := range h.Endpoints() {
			mine[id] = true
		}
		for i := range uint64(1000) {
			for _, id := range h.Owners(i*0x9e3779b97f4a7c15, nil) {
				if !mine[id] {
					t.Fatalf("%s: owner %d is not one of its endpoints", h.Name(), id)
				}
			}
		}
	}
}

func TestSingleHashring(t *testing.T) {
	r, err := SingleHashring([]string{"b:1", "http://a:1/api/v1/receive", "c:1"}, Options{ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.ForTenant("any")
	if err != nil || h.Name() != "default" || len(h.Tenants()) != 0 {
		t.Fatalf("ForTenant = %v, %v", h, err)
	}
	if got := h.Owners(42, nil); len(got) != 3 {
		t.Errorf("owners %v", got)
	}
	if _, err := SingleHashring(nil, DefaultOptions()); err == nil || !strings.Contains(err.Error(), "no endpoints") {
		t.Errorf("no addresses: %v", err)
	}
	if _, err := SingleHashring([]string{"a:1", "a:1"}, DefaultOptions()); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate: %v", err)
	}
}
