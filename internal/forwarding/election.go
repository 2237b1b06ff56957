package forwarding

// ElectPath is where the block builder that owns a (tenant, cluster) of
// HA-paired senders answers which replica is stored (see
// docs/ARCHITECTURE.md, "HA-pair deduplication"). A router of a release
// before it gets a 404 and never asks; a router asking a block builder of
// such a release gets one too, and answers 503 until it is updated.
const ElectPath = "/api/v1/ha/elect"

// ElectRequest says that Replica writes for (Tenant, Cluster) now.
type ElectRequest struct {
	Tenant  string `json:"tenant"`
	Cluster string `json:"cluster"`
	Replica string `json:"replica"`
	// Known is the replica the router believes elected, "" if none: a
	// block builder without the election (its hashring ownership just
	// moved to it) starts from it.
	Known string `json:"known,omitempty"`
	// TimeoutMs is the tenant's failover timeout (ha_failover_timeout).
	TimeoutMs int64 `json:"timeout_ms"`
}

// ElectResponse names the replica elected for the cluster.
type ElectResponse struct {
	Replica     string `json:"replica"`
	ElectedAtMs int64  `json:"elected_at_ms"`
}
