// This file holds the hashrings.json format (the one Thanos Receive reads),
// its parsing and the validation that does not depend on Options.

package shard

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Algorithms a hashring can use.
const (
	// AlgorithmKetama is consistent hashing with virtual nodes: adding or
	// removing an endpoint moves only the share of series it gains or loses.
	AlgorithmKetama = "ketama"
	// AlgorithmHashmod is hash modulo the number of endpoints. Adding an
	// endpoint moves most series; it is kept for users migrating from it.
	AlgorithmHashmod = "hashmod"
)

// Tenant matcher types of a hashring.
const (
	// TenantMatcherExact matches tenants by equality (the default).
	TenantMatcherExact = "exact"
	// TenantMatcherGlob matches tenants with path.Match patterns, as Thanos.
	TenantMatcherGlob = "glob"
)

// Endpoint is one block builder.
type Endpoint struct {
	// Address is host:port, normalised: lower-case host, no scheme, no path.
	// The ketama ring is built from it, so two spellings of one address
	// would be two endpoints.
	Address string `json:"address"`
	// AZ is the availability zone; replicas of a series go to distinct
	// zones first.
	AZ string `json:"az,omitempty"`
	// Scheme is how the address was written: "https" or "http" when it
	// was a URL, empty for host:port (the router's STRATA_FORWARD_TLS_*
	// then decide). It is not part of the endpoint's identity: the ring
	// hashes Address alone.
	Scheme string `json:"-"`
}

// UnmarshalJSON accepts an endpoint as a string ("host:port", or a URL such
// as "http://host:port/api/v1/receive") or as an object
// {"address": "...", "az": "..."}, as Thanos does, and normalises the
// address.
func (e *Endpoint) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	var raw string
	if len(data) > 0 && data[0] == '{' {
		// capnproto_address is Thanos' address of its Cap'n Proto
		// replication protocol; Strata does not speak it, but a Thanos file
		// that sets it must still load.
		var obj struct {
			Address          string `json:"address"`
			AZ               string `json:"az"`
			CapNProtoAddress string `json:"capnproto_address"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil {
			return fmt.Errorf("endpoint %s: %w (known fields: address, az)", data, err)
		}
		raw, e.AZ = obj.Address, obj.AZ
	} else if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("endpoint %s: want a string \"host:port\" or an object {\"address\": ..., \"az\": ...}", data)
	}
	scheme, addr, err := normalizeAddress(raw)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", raw, err)
	}
	e.Address, e.Scheme = addr, scheme
	return nil
}

// HashringConfig is one element of hashrings.json.
type HashringConfig struct {
	// Name is the hashring's name, used in metrics and messages.
	Name string `json:"hashring"`
	// Tenants makes the hashring a hard-tenancy one: it takes these tenants
	// only. A hashring without tenants is soft: it takes every tenant that
	// no hashring before it took.
	Tenants []string `json:"tenants,omitempty"`
	// TenantMatcherType is "exact" (or empty) or "glob".
	TenantMatcherType string `json:"tenant_matcher_type,omitempty"`
	// Endpoints are the block builders of the hashring.
	Endpoints []Endpoint `json:"endpoints"`
	// Algorithm is "ketama" or "hashmod"; empty means Options.DefaultAlgorithm.
	Algorithm string `json:"algorithm,omitempty"`
	// ExternalLabels are attached to the blocks of the hashring's tenants.
	ExternalLabels map[string]string `json:"external_labels,omitempty"`
}

// knownFields lists the fields of a hashring, for messages about unknown ones.
const knownFields = "hashring, tenants, tenant_matcher_type, endpoints, algorithm, external_labels"

// ParseConfig reads a hashrings.json file: a JSON array of hashrings. It
// normalises endpoint addresses and checks everything that does not depend
// on Options; NewRing checks the rest (replication factor, algorithm).
func ParseConfig(data []byte) ([]HashringConfig, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows add a BOM
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the hashrings file is empty; it must be a JSON array of hashrings")
	}
	if trimmed[0] != '[' {
		return nil, fmt.Errorf("the hashrings file must be a JSON array of hashrings ([{...}, ...]), it starts with %q", firstRune(trimmed))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, jsonError(trimmed, err)
	}
	cfgs := make([]HashringConfig, len(elems))
	for i, raw := range elems {
		if err := decodeHashring(raw, &cfgs[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", hashringRef(i, peekName(raw)), err)
		}
	}
	if err := validate(cfgs, false); err != nil {
		return nil, err
	}
	return cfgs, nil
}

func decodeHashring(raw json.RawMessage, cfg *HashringConfig) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(cfg)
	if err == nil {
		return nil
	}
	// encoding/json has no typed error for unknown fields.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		field := strings.TrimPrefix(msg, "json: unknown field ")
		if field == `"shuffle_sharding_config"` {
			return errors.New("shuffle_sharding_config is not supported by Strata; remove it (the hashring then spreads every tenant over all its endpoints)")
		}
		return fmt.Errorf("unknown field %s (known fields: %s)", field, knownFields)
	}
	return err
}

// peekName gets a hashring's name for error messages from an element that
// may not decode.
func peekName(raw json.RawMessage) string {
	var v struct {
		Name string `json:"hashring"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.Name
}

// jsonError adds the line and column to JSON syntax errors, which only carry
// a byte offset.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		line, col := lineCol(data, typ.Offset)
		return fmt.Errorf("line %d, column %d: the hashrings file must be a JSON array of hashring objects: %w", line, col, err)
	}
	return err
}

// lineCol returns the position of the byte that encoding/json stopped at:
// its offsets count the bytes read, that byte included.
func lineCol(data []byte, offset int64) (line, col int) {
	p := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:p]
	line = bytes.Count(before, []byte("\n")) + 1
	col = p - bytes.LastIndexByte(before, '\n')
	return line, col
}

func firstRune(b []byte) string {
	r, _ := utf8.DecodeRune(b)
	return string(r)
}

// hashringRef names a hashring in messages; unnamed ones by their position.
func hashringRef(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("hashrings[%d] (unnamed)", i)
	}
	return fmt.Sprintf("hashring %q", name)
}

// validate checks what does not depend on Options (but TLS) and normalises
// endpoint addresses in place. It reports every problem it finds, so that
// one run of `strata hashring check` shows all of them.
func validate(cfgs []HashringConfig, tls bool) error {
	if len(cfgs) == 0 {
		return errors.New("no hashrings: the file must hold at least one hashring")
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	names := make(map[string]int, len(cfgs))
	exactTenants := make(map[string]int)
	// firstSeen is an endpoint's zone or scheme where it was first listed.
	type firstSeen struct {
		value    string
		hashring int
	}
	endpointAZ := make(map[string]firstSeen)
	endpointScheme := make(map[string]firstSeen)
	soft := -1
	for i := range cfgs {
		cfg := &cfgs[i]
		ref := hashringRef(i, cfg.Name)

		if j, ok := names[cfg.Name]; ok {
			if cfg.Name == "" {
				fail("hashrings[%d] and hashrings[%d] both have no name; set \"hashring\" on each", j, i)
			} else {
				fail("hashring %q is defined twice (hashrings[%d] and hashrings[%d]); names must be unique", cfg.Name, j, i)
			}
		} else {
			names[cfg.Name] = i
		}
		if soft >= 0 {
			fail("%s can never be chosen: %s before it has no tenants and takes every tenant (first match wins); move %s last or give it tenants",
				ref, hashringRef(soft, cfgs[soft].Name), hashringRef(soft, cfgs[soft].Name))
		}
		if len(cfg.Tenants) == 0 && soft < 0 {
			soft = i
		}

		switch cfg.Algorithm {
		case "", AlgorithmKetama, AlgorithmHashmod:
		default:
			fail("%s: algorithm %q is unknown; use %q or %q (or leave it out for the default)", ref, cfg.Algorithm, AlgorithmKetama, AlgorithmHashmod)
		}

		matcher := cfg.TenantMatcherType
		switch matcher {
		case "", TenantMatcherExact, TenantMatcherGlob:
		default:
			fail("%s: tenant_matcher_type %q is unknown; use %q (the default) or %q", ref, matcher, TenantMatcherExact, TenantMatcherGlob)
		}
		for k, t := range cfg.Tenants {
			switch {
			case t == "":
				fail("%s: tenants[%d] is empty", ref, k)
			case matcher == TenantMatcherGlob:
				if _, err := path.Match(t, ""); err != nil {
					fail("%s: tenant pattern %q: %w (tenant_matcher_type \"glob\" uses Go's path.Match syntax: *, ?, [a-z], \\ to escape)", ref, t, err)
				}
			case matcher == "" || matcher == TenantMatcherExact:
				if j, ok := exactTenants[t]; ok && j != i {
					fail("tenant %q is claimed by %s and %s; a tenant belongs to one hashring only", t, hashringRef(j, cfgs[j].Name), ref)
				} else {
					exactTenants[t] = i
				}
			}
		}

		if len(cfg.Endpoints) == 0 {
			fail("%s: no endpoints; list at least one block builder in \"endpoints\"", ref)
		}
		seen := make(map[string]bool, len(cfg.Endpoints))
		for k := range cfg.Endpoints {
			ep := &cfg.Endpoints[k]
			scheme, addr, err := normalizeAddress(ep.Address)
			if err != nil {
				fail("%s: endpoint %q: %w", ref, ep.Address, err)
				continue
			}
			if scheme != "" && ep.Scheme != "" && scheme != ep.Scheme {
				fail("%s: endpoint %q has scheme %q and an address written %s://", ref, ep.Address, ep.Scheme, scheme)
				continue
			}
			ep.Address, ep.Scheme = addr, cmp.Or(scheme, ep.Scheme)
			if ep.Scheme != "" && ep.Scheme != "http" && ep.Scheme != "https" {
				fail("%s: endpoint %q: scheme %q is not supported; use http or https", ref, addr, ep.Scheme)
				continue
			}
			if ep.Scheme == "http" && tls {
				// Honouring it would send this endpoint's tenants in the
				// clear while every other endpoint gets TLS.
				fail("%s: endpoint \"http://%s\" is written http://, but the router forwards over TLS (STRATA_FORWARD_TLS_*); write https:// or host:port", ref, addr)
				continue
			}
			if seen[addr] {
				fail("%s: endpoint %q is listed twice", ref, addr)
				continue
			}
			seen[addr] = true
			// One block builder has one zone, whichever hashrings it serves.
			if prev, ok := endpointAZ[addr]; ok && prev.value != ep.AZ {
				fail("endpoint %q has az %q in %s but az %q in %s; one endpoint is in one zone",
					addr, prev.value, hashringRef(prev.hashring, cfgs[prev.hashring].Name), ep.AZ, ref)
			} else if !ok {
				endpointAZ[addr] = firstSeen{ep.AZ, i}
			}
			// One block builder speaks one protocol on one port.
			if prev, ok := endpointScheme[addr]; ok && prev.value != ep.Scheme {
				fail("endpoint %q is written %s in %s but %s in %s; one endpoint is reached one way",
					addr, schemeRef(prev.value), hashringRef(prev.hashring, cfgs[prev.hashring].Name), schemeRef(ep.Scheme), ref)
			} else if !ok {
				endpointScheme[addr] = firstSeen{ep.Scheme, i}
			}
		}

		for name := range cfg.ExternalLabels {
			if name == "" || !utf8.ValidString(name) {
				fail("%s: external_labels: label name %q is not valid", ref, name)
			}
		}
	}
	return errors.Join(errs...)
}

func schemeRef(scheme string) string {
	if scheme == "" {
		return "host:port"
	}
	return scheme + "://"
}

// normalizeAddress turns the spellings of an endpoint that Thanos files use
// (host:port, or a URL with scheme and path) into host:port, so that the
// ring, the duplicate checks and the router all see one spelling. The
// scheme, if any, is returned apart (lower-case): the router honours it.
func normalizeAddress(s string) (scheme, addr string, err error) {
	a := strings.TrimSpace(s)
	if a == "" {
		return "", "", errors.New("address is empty")
	}
	if sc, rest, ok := strings.Cut(a, "://"); ok {
		scheme = strings.ToLower(sc)
		switch scheme {
		case "http", "https":
		default:
			return "", "", fmt.Errorf("scheme %q is not supported; write host:port, http:// or https://", sc)
		}
		a = rest
	}
	// The router always posts to /api/v1/receive, so a path is dropped.
	if i := strings.IndexAny(a, "/?#"); i >= 0 {
		a = a[:i]
	}
	if strings.Contains(a, "@") {
		return "", "", errors.New("credentials in an endpoint address are not supported; write host:port")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		var aerr *net.AddrError
		if errors.As(err, &aerr) && aerr.Err == "missing port in address" {
			return "", "", fmt.Errorf("no port; write host:port, e.g. %s:19291", a)
		}
		return "", "", fmt.Errorf("want host:port: %w", err)
	}
	if host == "" {
		return "", "", errors.New("no host; write host:port")
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == ',' || r == '"' || r >= utf8.RuneSelf }) {
		return "", "", fmt.Errorf("host %q has characters a host name cannot have", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return scheme, net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(p, 10)), nil
}
