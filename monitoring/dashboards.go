package monitoring

// Dashboards are the Grafana dashboards, in the order of their links.
//
// Every selector is limited to $namespace; per-tenant metrics to $tenant
// too. The TSDB's own metrics are read with tenant!="" as well: a
// Prometheus in the same namespace exposes prometheus_tsdb_* of its own,
// which carry no tenant label.
var Dashboards = []Dashboard{writePath, blockBuilders, bucketDashboard}

var namespaceVar = func(selector string) Variable {
	return Variable{Name: "namespace", Label: "Namespace", Selector: selector, LabelName: "namespace"}
}

var writePath = Dashboard{
	File:  "strata-write-path.json",
	UID:   "strata-write-path",
	Title: "Strata / Write path",
	Description: "Remote-write through the routers: requests and samples by code and tenant, latency, " +
		"quorum, and the block builders as the routers see them.",
	Vars: []Variable{
		namespaceVar(`strata_router_quorum_failures_total`),
		{Name: "tenant", Label: "Tenant", Selector: `strata_router_requests_total{namespace=~"$namespace"}`, LabelName: "tenant"},
	},
	Rows: []Row{
		{Title: "Requests", Panels: []Panel{
			{Title: "Requests by status code", Unit: "reqps", Stack: true,
				Description: "Remote-write requests the routers answered. 400 and 413 are dropped by senders, 429 and 5xx retried.",
				Targets:     []Target{{Expr: `sum by (code) (rate(strata_router_requests_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{code}}"}}},
			{Title: "Requests by tenant", Unit: "reqps", Stack: true,
				Description: "tenant=\"unknown\": not determined, or beyond STRATA_METRICS_MAX_TENANTS.",
				Targets:     []Target{{Expr: `sum by (tenant) (rate(strata_router_requests_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}}"}}},
			{Title: "5xx ratio", Unit: "percentunit",
				Description: "Share of requests answered 5xx: retried by senders, lost if they give up (alert StrataRouterErrorRate).",
				Targets: []Target{{Expr: `sum(rate(strata_router_requests_total{namespace=~"$namespace", tenant=~"$tenant", code=~"5.."}[$__rate_interval]))` +
					` / sum(rate(strata_router_requests_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "5xx"}}},
		}},
		{Title: "Samples", Panels: []Panel{
			{Title: "Written to a quorum, by type", Unit: "short", Stack: true,
				Description: "Samples, histogram samples and exemplars per second written to a quorum of block builders.",
				Targets:     []Target{{Expr: `sum by (type) (rate(strata_router_written_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{type}}"}}},
			{Title: "Written to a quorum, by tenant", Unit: "short", Stack: true,
				Targets: []Target{{Expr: `sum by (tenant) (rate(strata_router_written_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}}"}}},
			{Title: "Series refused by the block builders, by kind", Unit: "short", Stack: true,
				Description: "invalid and limit are dropped by senders; conflict: out of order, duplicate or too old (answered 400).",
				Targets:     []Target{{Expr: `sum by (tenant, kind) (rate(strata_blockbuilder_rejected_series_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}} {{kind}}"}}},
		}},
		{Title: "Latency", Panels: []Panel{
			{Title: "Request latency", Unit: "s", Width: 12,
				Description: "Time to answer a write: a quorum of each series' owners must have written it.",
				Targets: []Target{
					{Expr: `histogram_quantile(0.5, sum by (le) (rate(strata_router_request_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))`, Legend: "p50"},
					{Expr: `histogram_quantile(0.9, sum by (le) (rate(strata_router_request_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))`, Legend: "p90"},
					{Expr: `histogram_quantile(0.99, sum by (le) (rate(strata_router_request_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))`, Legend: "p99"},
				}},
			{Title: "Forward latency p99, by block builder", Unit: "s", Width: 12,
				Description: "Time of one forward to a block builder, bounded by STRATA_FORWARD_TIMEOUT.",
				Targets: []Target{{Expr: `histogram_quantile(0.99, sum by (endpoint, le) (` +
					endpointOf(`rate(strata_router_forward_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])`) + `))`, Legend: "{{endpoint}}"}}},
		}},
		{Title: "Quorum and replicas", Panels: []Panel{
			{Title: "Quorum failures", Unit: "reqps",
				Description: "Requests answered 503 because series missed their quorum (alert StrataRouterQuorumFailures).",
				Targets:     []Target{{Expr: `sum(rate(strata_router_quorum_failures_total{namespace=~"$namespace"}[$__rate_interval]))`, Legend: "quorum failures"}}},
			{Title: "Minority rejections", Unit: "short",
				Description: "Series stored on a quorum that a minority refused: a replica catching up after a restart.",
				Targets:     []Target{{Expr: `sum(rate(strata_router_minority_rejections_total{namespace=~"$namespace"}[$__rate_interval]))`, Legend: "series/s"}}},
			{Title: "Copies lost after quorum, by block builder", Unit: "short",
				Description: "Forwards refused or failed after the sender was answered: data that replica misses (alert StrataReplicaMissingWrites).",
				Targets: []Target{{Expr: `sum by (endpoint, result) (` +
					endpointOf(`rate(strata_router_forwards_after_quorum_total{namespace=~"$namespace", result!="written"}[$__rate_interval])`) + `)`, Legend: "{{endpoint}} {{result}}"}}},
		}},
		{Title: "Block builders as the routers see them", Panels: []Panel{
			{Title: "Endpoint up (the least of the routers)", Unit: "short",
				Description: "0 while some router backs the block builder off after failures (alert StrataRouterEndpointDown).",
				Targets:     []Target{{Expr: `min by (endpoint) (` + endpointOf(`strata_router_endpoint_up{namespace=~"$namespace"}`) + `)`, Legend: "{{endpoint}}"}}},
			{Title: "Forwards by result", Unit: "reqps",
				Targets: []Target{{Expr: `sum by (endpoint, result) (` +
					endpointOf(`rate(strata_router_forwards_total{namespace=~"$namespace"}[$__rate_interval])`) + `)`, Legend: "{{endpoint}} {{result}}"}}},
			{Title: "Forward errors by reason", Unit: "reqps",
				Description: "transport: no connection; backoff: skipped while backed off; overloaded, behind: too many writes in flight; or the status code.",
				Targets: []Target{{Expr: `sum by (endpoint, reason) (` +
					endpointOf(`rate(strata_router_forward_errors_total{namespace=~"$namespace"}[$__rate_interval])`) + `)`, Legend: "{{endpoint}} {{reason}}"}}},
		}},
		{Title: "Configuration", Panels: []Panel{
			{Title: "Routers up", Type: Stat, Unit: "short",
				Targets: []Target{{Expr: `sum(up{namespace=~"$namespace", job="router"})`, Legend: "routers"}}},
			{Title: "Hashring endpoints", Unit: "short",
				Targets: []Target{{Expr: `max by (hashring) (strata_hashring_endpoints{namespace=~"$namespace"})`, Legend: "{{hashring}}"}}},
			{Title: "Files loaded (1) or refused (0)", Unit: "short",
				Description: "The last load of each reloaded file (hashrings, limits, certificates, tokens); alert StrataConfigFileRefused.",
				Targets:     []Target{{Expr: `min by (file) (strata_config_file_last_reload_successful{namespace=~"$namespace"})`, Legend: "{{file}}"}}},
		}},
	},
}

var blockBuilders = Dashboard{
	File:  "strata-blockbuilders.json",
	UID:   "strata-blockbuilders",
	Title: "Strata / Block builders",
	Description: "The block builders: writes and appends, heads, WALs, blocks cut and uploaded, " +
		"the backlog on disk, per tenant.",
	Vars: []Variable{
		namespaceVar(`strata_blockbuilder_ready`),
		{Name: "instance", Label: "Block builder", Selector: `strata_blockbuilder_ready{namespace=~"$namespace"}`, LabelName: "instance"},
		{Name: "tenant", Label: "Tenant", Selector: `strata_shipper_pending_blocks{namespace=~"$namespace", instance=~"$instance"}`, LabelName: "tenant"},
	},
	Rows: []Row{
		{Title: "Overview", Panels: []Panel{
			{Title: "Ready", Type: Stat, Unit: "short", Width: 6,
				Description: "Block builders that take writes (their WALs replayed, not stopping).",
				Targets:     []Target{{Expr: `sum(strata_blockbuilder_ready{namespace=~"$namespace", instance=~"$instance"})`, Legend: "ready"}}},
			{Title: "Open tenants", Type: Stat, Unit: "short", Width: 6,
				Targets: []Target{{Expr: `sum(strata_blockbuilder_open_tenants{namespace=~"$namespace", instance=~"$instance"})`, Legend: "tenants"}}},
			{Title: "Open tenants of STRATA_MAX_TENANTS", Unit: "percentunit", Width: 12,
				Description: "At 100% writes for new tenants are refused (alert StrataTenantsNearLimit); no series without a bound.",
				Targets: []Target{{Expr: `strata_blockbuilder_open_tenants{namespace=~"$namespace", instance=~"$instance"}` +
					` / (strata_blockbuilder_max_tenants{namespace=~"$namespace", instance=~"$instance"} > 0)`, Legend: "{{instance}}"}}},
		}},
		{Title: "Writes", Panels: []Panel{
			{Title: "Write requests by status code", Unit: "reqps", Stack: true,
				Targets: []Target{{Expr: `sum by (code) (rate(strata_blockbuilder_write_requests_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{code}}"}}},
			{Title: "Appended by tenant and type", Unit: "short", Stack: true,
				Targets: []Target{{Expr: `sum by (tenant, type) (rate(strata_blockbuilder_appended_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}} {{type}}"}}},
			{Title: "Write latency", Unit: "s",
				Targets: []Target{
					{Expr: `histogram_quantile(0.5, sum by (le) (rate(strata_blockbuilder_write_duration_seconds_bucket{namespace=~"$namespace", instance=~"$instance"}[$__rate_interval])))`, Legend: "p50"},
					{Expr: `histogram_quantile(0.99, sum by (le) (rate(strata_blockbuilder_write_duration_seconds_bucket{namespace=~"$namespace", instance=~"$instance"}[$__rate_interval])))`, Legend: "p99"},
				}},
			{Title: "Series refused by tenant and kind", Unit: "short",
				Description: "limit: most often STRATA_MAX_SERIES_PER_TENANT (alert StrataSeriesRefusedOverLimit).",
				Targets:     []Target{{Expr: `sum by (tenant, kind) (rate(strata_blockbuilder_rejected_series_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}} {{kind}}"}}},
			{Title: "Exemplars dropped", Unit: "short",
				Targets: []Target{{Expr: `sum by (tenant) (rate(strata_blockbuilder_exemplars_dropped_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}}"}}},
			{Title: "Samples refused by the TSDB", Unit: "short",
				Targets: []Target{
					{Expr: `sum by (tenant) (rate(prometheus_tsdb_out_of_order_samples_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""}[$__rate_interval]))`, Legend: "{{tenant}} out of order"},
					{Expr: `sum by (tenant) (rate(prometheus_tsdb_too_old_samples_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""}[$__rate_interval]))`, Legend: "{{tenant}} too old"},
					{Expr: `sum by (tenant) (rate(prometheus_tsdb_out_of_bound_samples_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""}[$__rate_interval]))`, Legend: "{{tenant}} out of bounds"},
				}},
		}},
		{Title: "Heads", Panels: []Panel{
			{Title: "Head series by tenant (every replica)", Unit: "short", Stack: true,
				Description: "Summed over block builders: each series counts once per replica holding it.",
				Targets:     []Target{{Expr: `sum by (tenant) (prometheus_tsdb_head_series{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""})`, Legend: "{{tenant}}"}}},
			{Title: "Head series by block builder", Unit: "short",
				Description: "About 1.5 KB of memory each (README, sizing block builders).",
				Targets:     []Target{{Expr: `sum by (instance) (prometheus_tsdb_head_series{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""})`, Legend: "{{instance}}"}}},
			{Title: "Series created", Unit: "short",
				Description: "New series per second by tenant: churn.",
				Targets:     []Target{{Expr: `sum by (tenant) (rate(prometheus_tsdb_head_series_created_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""}[$__rate_interval]))`, Legend: "{{tenant}}"}}},
		}},
		{Title: "WAL", Panels: []Panel{
			{Title: "WAL size by tenant", Unit: "bytes", Stack: true,
				Targets: []Target{{Expr: `sum by (tenant) (prometheus_tsdb_wal_storage_size_bytes{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""})`, Legend: "{{tenant}}"}}},
			{Title: "WAL replay time at the last start", Unit: "s",
				Description: "Summed over tenants, which replay one after the other before the block builder is ready (alert StrataWALReplaySlow).",
				Targets:     []Target{{Expr: `sum by (instance) (prometheus_tsdb_data_replay_duration_seconds{namespace=~"$namespace", instance=~"$instance", tenant!=""})`, Legend: "{{instance}}"}}},
			{Title: "WAL write failures and renewals", Unit: "short",
				Description: "A failed WAL write (disk full, I/O error) renews the tenant's WAL after flushing its head (alert StrataWALRenewed).",
				Targets: []Target{
					{Expr: `sum by (instance) (increase(strata_blockbuilder_wal_renewals_total{namespace=~"$namespace", instance=~"$instance"}[$__rate_interval]))`, Legend: "{{instance}} renewals"},
					{Expr: `sum by (instance) (increase(prometheus_tsdb_wal_writes_failed_total{namespace=~"$namespace", instance=~"$instance", tenant!=""}[$__rate_interval]))`, Legend: "{{instance}} failed writes"},
				}},
		}},
		{Title: "Blocks and uploads", Panels: []Panel{
			{Title: "Blocks cut per hour", Unit: "short",
				Description: "Heads cut into blocks; failed cuts leave the samples in the head (alert StrataCompactionsFailing).",
				Targets: []Target{
					{Expr: `sum by (tenant) (increase(prometheus_tsdb_compactions_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""}[1h]))`, Legend: "{{tenant}}"},
					{Expr: `sum by (tenant) (increase(prometheus_tsdb_compactions_failed_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant", tenant!=""}[1h]))`, Legend: "{{tenant}} failed"},
				}},
			{Title: "Uploads by result", Unit: "short",
				Targets: []Target{{Expr: `sum by (tenant, result) (rate(strata_shipper_uploads_total{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}} {{result}}"}}},
			{Title: "Pending blocks", Unit: "short", Stack: true,
				Description: "Finished blocks on disk not uploaded yet.",
				Targets:     []Target{{Expr: `sum by (tenant) (strata_shipper_pending_blocks{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"})`, Legend: "{{tenant}}"}}},
			{Title: "Oldest pending block", Unit: "s",
				Description: "Time since the oldest block not uploaded yet was cut (alerts StrataBlockUploadsLate, StrataBlockUploadsVeryLate).",
				Targets:     []Target{{Expr: `max by (tenant) (strata_shipper_oldest_pending_block_age_seconds{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"})`, Legend: "{{tenant}}"}}},
			{Title: "Upload in progress for", Unit: "s",
				Description: "How long the upload in progress has run, 0 when none is (alert StrataBlockUploadHanging).",
				Targets: []Target{{Expr: `max by (tenant) ((time() - strata_shipper_upload_in_progress_since_timestamp_seconds{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"})` +
					` * (strata_shipper_upload_in_progress_since_timestamp_seconds{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"} > bool 0))`, Legend: "{{tenant}}"}}},
			{Title: "Time since the last upload", Unit: "s",
				Targets: []Target{{Expr: `time() - max by (tenant) (strata_shipper_last_successful_upload_timestamp_seconds{namespace=~"$namespace", instance=~"$instance", tenant=~"$tenant"})`, Legend: "{{tenant}}"}}},
		}},
		{Title: "Disk", Panels: []Panel{
			{Title: "Volume used", Unit: "percentunit", Width: 12,
				Description: "The block builders' PersistentVolumeClaims, from the kubelet (alerts StrataBlockBuilderDiskFilling, StrataBlockBuilderDiskFull).",
				Targets: []Target{{Expr: `1 - kubelet_volume_stats_available_bytes{namespace=~"$namespace", ` + blockBuilderPVC + `}` +
					` / kubelet_volume_stats_capacity_bytes{namespace=~"$namespace", ` + blockBuilderPVC + `}`, Legend: "{{persistentvolumeclaim}}"}}},
			{Title: "Volume available", Unit: "bytes", Width: 12,
				Targets: []Target{{Expr: `kubelet_volume_stats_available_bytes{namespace=~"$namespace", ` + blockBuilderPVC + `}`, Legend: "{{persistentvolumeclaim}}"}}},
		}},
	},
}

var bucketDashboard = Dashboard{
	File:  "strata-bucket.json",
	UID:   "strata-bucket",
	Title: "Strata / Bucket",
	Description: "The bucket as the block builders see it: what they upload, what waits, and how the " +
		"object store answers. strata bucket ls, verify and web read the bucket itself.",
	Vars: []Variable{
		namespaceVar(`strata_blockbuilder_ready`),
		{Name: "tenant", Label: "Tenant", Selector: `strata_shipper_pending_blocks{namespace=~"$namespace"}`, LabelName: "tenant"},
	},
	Rows: []Row{
		{Title: "Backlog", Panels: []Panel{
			{Title: "Blocks waiting for upload", Type: Stat, Unit: "short", Width: 6,
				Targets: []Target{{Expr: `sum(strata_shipper_pending_blocks{namespace=~"$namespace", tenant=~"$tenant"})`, Legend: "blocks"}}},
			{Title: "Oldest block waiting", Type: Stat, Unit: "s", Width: 6,
				Targets: []Target{{Expr: `max(strata_shipper_oldest_pending_block_age_seconds{namespace=~"$namespace", tenant=~"$tenant"})`, Legend: "age"}}},
			{Title: "Upload failures in the last hour", Type: Stat, Unit: "short", Width: 6,
				Targets: []Target{{Expr: `sum(increase(strata_shipper_upload_failures_total{namespace=~"$namespace", tenant=~"$tenant"}[1h]))`, Legend: "failures"}}},
			{Title: "Reading the bucket itself", Type: Text, Width: 6,
				Markdown: "`strata bucket ls` lists blocks per tenant and replica, `strata bucket verify` finds partial " +
					"uploads, missing files and overlaps, and `strata bucket web` serves a timeline; see docs/runbook.md."},
		}},
		{Title: "Uploads", Panels: []Panel{
			{Title: "Bytes uploaded by tenant", Unit: "Bps", Stack: true,
				Targets: []Target{{Expr: `sum by (tenant) (rate(strata_shipper_uploaded_bytes_total{namespace=~"$namespace", tenant=~"$tenant"}[$__rate_interval]))`, Legend: "{{tenant}}"}}},
			{Title: "Blocks uploaded and failed, by tenant", Unit: "short",
				Targets: []Target{{Expr: `sum by (tenant, result) (increase(strata_shipper_uploads_total{namespace=~"$namespace", tenant=~"$tenant"}[1h]))`, Legend: "{{tenant}} {{result}}"}}},
			{Title: "Time since a block of the tenant reached the bucket", Unit: "s",
				Description: "The newest upload of any block builder; blocks come every STRATA_BLOCK_DURATION per replica.",
				Targets:     []Target{{Expr: `time() - max by (tenant) (strata_shipper_last_successful_upload_timestamp_seconds{namespace=~"$namespace", tenant=~"$tenant"})`, Legend: "{{tenant}}"}}},
		}},
		{Title: "Object store calls", Panels: []Panel{
			{Title: "Operations", Unit: "ops", Stack: true,
				Targets: []Target{{Expr: `sum by (operation) (rate(objstore_bucket_operations_total{namespace=~"$namespace", component="blockbuilder"}[$__rate_interval]))`, Legend: "{{operation}}"}}},
			{Title: "Failed operations", Unit: "ops",
				Targets: []Target{{Expr: `sum by (operation) (rate(objstore_bucket_operation_failures_total{namespace=~"$namespace", component="blockbuilder"}[$__rate_interval]))`, Legend: "{{operation}}"}}},
			{Title: "Operation latency p99", Unit: "s",
				Targets: []Target{{Expr: `histogram_quantile(0.99, sum by (operation, le) (rate(objstore_bucket_operation_duration_seconds_bucket{namespace=~"$namespace", component="blockbuilder"}[$__rate_interval])))`, Legend: "{{operation}}"}}},
			{Title: "Bytes sent by operation", Unit: "Bps",
				Targets: []Target{{Expr: `sum by (operation) (rate(objstore_bucket_operation_transferred_bytes_sum{namespace=~"$namespace", component="blockbuilder"}[$__rate_interval]))`, Legend: "{{operation}}"}}},
			{Title: "Time since the last successful upload, by block builder", Unit: "s",
				Targets: []Target{{Expr: `time() - max by (instance) (objstore_bucket_last_successful_upload_time{namespace=~"$namespace", component="blockbuilder"} > 0)`, Legend: "{{instance}}"}}},
		}},
		{Title: "Blocks kept on the block builders", Panels: []Panel{
			{Title: "Blocks on local disk, by tenant", Unit: "short", Stack: true, Width: 12,
				Description: "Uploaded blocks stay for STRATA_LOCAL_RETENTION, for queries; blocks not uploaded stay until they are.",
				Targets:     []Target{{Expr: `sum by (tenant) (prometheus_tsdb_blocks_loaded{namespace=~"$namespace", tenant=~"$tenant", tenant!=""})`, Legend: "{{tenant}}"}}},
			{Title: "Their size, by tenant", Unit: "bytes", Stack: true, Width: 12,
				Targets: []Target{{Expr: `sum by (tenant) (prometheus_tsdb_storage_blocks_bytes{namespace=~"$namespace", tenant=~"$tenant", tenant!=""})`, Legend: "{{tenant}}"}}},
		}},
	},
}
