package monitoring

// endpointOf gives the series of a router metric labelled by block
// builder their endpoint label whoever scraped them. The Prometheus
// Operator gives every target an endpoint label of its own (the port's
// name), so a scrape without honor_labels renames Strata's to
// exported_endpoint; a direct scrape keeps it. The copy is a no-op there.
func endpointOf(selector string) string {
	return `label_replace(` + selector + `, "endpoint", "$1", "exported_endpoint", "(.+)")`
}

// blockBuilderPVC selects the block builders' volumes among the kubelet's:
// the chart's claim template is "data", so a pod's claim is
// data-<release>-strata-blockbuilder-<ordinal>. The chart's PrometheusRule
// narrows it to its own release.
const blockBuilderPVC = `persistentvolumeclaim=~"data-.*blockbuilder-[0-9]+"`

// Groups are every alert, in the order of the rules file and the runbook.
var Groups = []Group{
	{Name: "strata-router", Alerts: []Alert{
		{
			Name:     "StrataRouterQuorumFailures",
			Expr:     `rate(strata_router_quorum_failures_total[5m]) > 0`,
			For:      "5m",
			Severity: Warning,
			Summary:  `Router {{ $labels.instance }} answers writes with 503: series miss their quorum`,
			Description: `{{ $value | humanize }} writes/s on router {{ $labels.instance }} could not be written to a quorum ` +
				`(RF/2+1) of their block builders and were answered 503. Senders retry them; nothing is lost unless a sender gives up.`,
			Meaning: `The router wrote some series of a request to fewer than RF/2+1 of the block builders that own them, ` +
				`so it answered 503 with ` + "`Retry-After`" + ` and the sender will send the request again. ` +
				`Each series needs a quorum of its own owners: with RF=3, two block builders that share series being ` +
				`down or refusing writes at once is enough.`,
			Confirm: "- `strata_router_endpoint_up == 0`: which block builders the router has backed off (see [StrataRouterEndpointDown](#stratarouterendpointdown)).\n" +
				"- `sum by (endpoint, reason) (rate(strata_router_forward_errors_total[5m]))`: why forwards fail " +
				"(`transport`, `backoff`, `overloaded`, `behind`, or a status code such as `503`).\n" +
				"- `strata_blockbuilder_ready`: a block builder replaying its WAL answers 503 until it is ready.\n" +
				"- The router's log: `block builder failing; backing off` names the endpoint; `write failed` gives the status and reason.\n" +
				"- The Write path dashboard: quorum failures against endpoint health.",
			Act: "- Bring the failing block builders back (their own alerts say why they fail: not ready, disk full, down).\n" +
				"- `overloaded` or `behind` reasons: a block builder is slower than its share of the writes; give it CPU, " +
				"or more block builders (`blockbuilder.replicas`; the routers reload the hashring without a restart).\n" +
				"- Several block builders restarted at once (a node drain, a rollout): keep to the PodDisruptionBudget, " +
				"which allows RF minus quorum down at a time.",
		},
		{
			Name: "StrataRouterErrorRate",
			Expr: `sum by (namespace, job) (rate(strata_router_requests_total{code=~"5.."}[5m]))` +
				` / sum by (namespace, job) (rate(strata_router_requests_total[5m])) > 0.05`,
			For:      "15m",
			Severity: Critical,
			Summary:  `{{ $value | humanizePercentage }} of remote-write requests to the routers fail with 5xx`,
			Description: `For 15 minutes more than 5% of the requests answered by the routers of job {{ $labels.job }} were 5xx ` +
				`({{ $value | humanizePercentage }} in the last 5 minutes). Senders retry them, but a sender that keeps failing falls ` +
				`behind and, past what it buffers, drops samples.`,
			Meaning: "A sustained share of remote-write requests is answered with a 5xx: 503 when series miss quorum " +
				"(block builders down, restarting, disk full, over `STRATA_MAX_TENANTS`), 500 for an unexpected error. " +
				"Prometheus retries 5xx with backoff and buffers what it cannot send in its WAL for about two hours: " +
				"a write path that fails for longer loses data at the sender.",
			Confirm: "- `sum by (code, tenant) (rate(strata_router_requests_total{code=~\"5..\"}[5m]))`: which codes and tenants.\n" +
				"- `rate(strata_router_quorum_failures_total[5m])`: the 503s that are quorum failures.\n" +
				"- `sum by (tenant, code) (rate(strata_blockbuilder_write_requests_total{code=~\"5..\"}[5m]))`: what the block builders answer the routers.\n" +
				"- The senders' side: `prometheus_remote_storage_samples_retried_total` and `prometheus_remote_storage_samples_dropped_total`.",
			Act: "- Follow the quorum failures: [StrataRouterQuorumFailures](#stratarouterquorumfailures).\n" +
				"- 503s of one tenant only, with block builders answering 503: a block builder cannot open the tenant " +
				"([StrataTenantsNearLimit](#stratatenantsnearlimit)) or cannot write its WAL ([StrataBlockBuilderDiskFull](#stratablockbuilderdiskfull)).\n" +
				"- 500s: the router's log has the error; report it with the log lines.",
		},
		{
			Name:     "StrataRouterEndpointDown",
			Expr:     `min by (namespace, job, pod, instance, endpoint) (` + endpointOf(`strata_router_endpoint_up`) + `) == 0`,
			For:      "10m",
			Severity: Warning,
			Summary:  `Router {{ $labels.instance }} has backed off block builder {{ $labels.endpoint }} for 10 minutes`,
			Description: `Router {{ $labels.instance }} skips block builder {{ $labels.endpoint }} after failed writes, and its probes ` +
				`have not brought it back for 10 minutes: the series it owns have a copy fewer, and writes fail once a quorum of a ` +
				`series' owners is down.`,
			Meaning: "After a failed write the router backs off a block builder (`STRATA_ENDPOINT_BACKOFF`, doubling up to " +
				"`STRATA_ENDPOINT_MAX_BACKOFF`) and probes it until it answers again. Ten minutes is longer than a block " +
				"builder takes to restart, unless its WAL replay is long.",
			Confirm: "- Is the block builder running and ready? `strata_blockbuilder_ready`, `up{job=\"blockbuilder\"}`, `kubectl get pods`.\n" +
				"- `sum by (endpoint, reason) (rate(strata_router_forward_errors_total[5m]))`: the router's reason (`transport`: no connection; a status code: the block builder's answer).\n" +
				"- Does the hashring name a block builder that does not exist? `strata hashring check <hashrings.json>`, and `strata_hashring_endpoints`.\n" +
				"- The router's log: `block builder failing; backing off` with the endpoint, then `block builder back` once it answers.",
			Act: "- A pod down or crash-looping: its events and log tell why (out of memory: see the sizing notes in the README).\n" +
				"- Replaying its WAL: wait for it ([StrataWALReplaySlow](#stratawalreplayslow)).\n" +
				"- An endpoint that is gone for good (a scaled-down block builder in a hashrings file of your own): remove it from the file.\n" +
				"- TLS or token errors in the log: the certificates or tokens of `STRATA_FORWARD_TLS_*` / `STRATA_FORWARD_BEARER_TOKEN_FILE` do not match the block builder's.",
		},
		{
			Name:     "StrataRouterSlow",
			Expr:     `histogram_quantile(0.99, sum by (namespace, job, le) (rate(strata_router_request_duration_seconds_bucket[5m]))) > 3`,
			For:      "15m",
			Severity: Warning,
			Summary:  `The routers of job {{ $labels.job }} take {{ $value | humanizeDuration }} to answer a write at the 99th percentile`,
			Description: `For 15 minutes the slowest 1% of writes to the routers of job {{ $labels.job }} took more than 3 seconds ` +
				`({{ $value | humanizeDuration }}); senders' queues back up behind them.`,
			Meaning: "A write is answered when a quorum of each series' owners has written it, so its time is that of the " +
				"slower block builders it needs, bounded by `STRATA_FORWARD_TIMEOUT` (5s). Three seconds means block " +
				"builders are slow to append, or forwards wait for a timeout.",
			Confirm: "- The Write path dashboard: forward latency by block builder shows which one is slow.\n" +
				"- `histogram_quantile(0.99, sum by (le) (rate(strata_blockbuilder_write_duration_seconds_bucket[5m])))`: the block builders' own time.\n" +
				"- CPU throttling and memory of the block builders (a Go heap near `GOMEMLIMIT` spends its time collecting).",
			Act: "- Give the slow block builders CPU or memory, or add block builders.\n" +
				"- Requests of very many samples take longer: Prometheus' `queue_config.max_samples_per_send` sizes them.",
		},
		{
			Name:     "StrataReplicaMissingWrites",
			Expr:     `sum by (namespace, job, endpoint) (` + endpointOf(`rate(strata_router_forwards_after_quorum_total{result!="written"}[5m])`) + `) > 0`,
			For:      "15m",
			Severity: Warning,
			Summary:  `Block builder {{ $labels.endpoint }} misses writes its replicas have`,
			Description: `{{ $value | humanize }} forwards/s to {{ $labels.endpoint }} were refused or failed after the write had reached ` +
				`its quorum: that replica lacks series the others hold. Thanos Query's deduplication reads them from the others; ` +
				`losing another replica of them now would lose data.`,
			Meaning: "The router answers the sender once a quorum has written a series, and keeps sending the copies still on " +
				"their way to slower replicas. These copies failed or were refused, so that replica holds less than the " +
				"others; nothing copies the data back to it later.",
			Confirm: "- `sum by (endpoint, result) (rate(strata_router_forwards_after_quorum_total[5m]))` (the endpoint label is `exported_endpoint` when the Prometheus Operator scrapes the routers).\n" +
				"- `sum by (endpoint, reason) (rate(strata_router_forward_errors_total[5m]))`: `overloaded` and `behind` mean the block builder cannot keep up with its share.\n" +
				"- `strata_router_minority_rejections_total`: refusals by a minority (a replica catching up after a restart sees conflicts).",
			Act: "- A replica that restarted catches up by itself: the alert resolves once it takes every write again.\n" +
				"- A replica that is always behind needs CPU, memory or fewer series (more block builders).\n" +
				"- Until it resolves, avoid taking another replica of the same series down (node drains, rollouts).",
		},
	}},
	{Name: "strata-config", Alerts: []Alert{
		{
			Name:     "StrataConfigFileRefused",
			Expr:     `strata_config_file_last_reload_successful == 0`,
			For:      "5m",
			Severity: Warning,
			Summary:  `{{ $labels.instance }} refuses its file {{ $labels.file }}`,
			Description: `The last load of {{ $labels.file }} on {{ $labels.instance }} failed: the last version that loaded stays ` +
				`in use, so the change made to the file is not applied. The log says why.`,
			Meaning: "Routers and block builders re-read their files when they change: the hashrings file, the limits file, " +
				"TLS certificates and CAs, bearer tokens. A file that does not parse or validate (a hashring without " +
				"endpoints, a certificate rotated half-way, a key that does not match it) is refused and the previous " +
				"one kept, so the process runs on an old configuration.",
			Confirm: "- The process' log: `... not loaded; the last one loaded stays in use` with the path and the error.\n" +
				"- `strata hashring check <file>` validates a hashrings file as the router does (with the router's `STRATA_FORWARD_TLS_*`, it refuses what the router refuses).\n" +
				"- `strata_config_file_last_reload_success_timestamp_seconds{file=...}`: since when the old version is in use.",
			Act: "- Fix the file (a ConfigMap or Secret): the process loads it within its reload interval, and the alert resolves.\n" +
				"- A certificate: make sure the certificate and the key in the Secret belong together (cert-manager writes both at once).",
		},
	}},
	{Name: "strata-blockbuilder", Alerts: []Alert{
		{
			Name:     "StrataTargetDown",
			Expr:     `up{job=~"router|blockbuilder"} == 0`,
			For:      "5m",
			Severity: Warning,
			Summary:  `Prometheus cannot scrape {{ $labels.job }} {{ $labels.instance }}`,
			Description: `{{ $labels.instance }} of job {{ $labels.job }} has not answered Prometheus' scrapes for 5 minutes: it is down, ` +
				`or unreachable, and its own alerts cannot fire.`,
			Meaning: "The chart's ServiceMonitor names the jobs after the components, `router` and `blockbuilder`; with " +
				"scrape configs of your own, name the jobs so or change the rule. A block builder that is not scraped " +
				"cannot report its uploads or its disk, so this alert stands in for them.",
			Confirm: "- `kubectl get pods` and the pod's events: crash loops, out of memory, a pending pod (no volume or node).\n" +
				"- Prometheus' targets page gives the scrape error (TLS, tokens: a scrape of a listener with a client CA needs `serviceMonitor.clientCertSecret`).",
			Act: "- Restore the process; a block builder replays its WAL on start and is not ready until it has.\n" +
				"- A scrape error only (the process is fine): fix the ServiceMonitor's TLS settings.",
		},
		{
			Name:     "StrataBlockBuilderNotReady",
			Expr:     `strata_blockbuilder_ready == 0`,
			For:      "15m",
			Severity: Warning,
			Summary:  `Block builder {{ $labels.instance }} has not been ready for 15 minutes`,
			Description: `{{ $labels.instance }} does not take writes: it is still replaying its WALs, or shutting down. ` +
				`Routers skip it meanwhile, so the series it owns have a copy fewer.`,
			Meaning: "A block builder is ready once it has replayed the WAL of every tenant on its disk, and stops being " +
				"ready when a graceful stop begins (it then flushes every head into blocks and uploads them, for up to " +
				"`STRATA_FLUSH_TIMEOUT`).",
			Confirm: "- Its log: no `block builder ready` line since the start means it is replaying; `flushing all tenants` means it is stopping.\n" +
				"- `prometheus_tsdb_data_replay_duration_seconds` by tenant once replayed; `prometheus_tsdb_wal_storage_size_bytes` tells how much there was to replay.\n" +
				"- A stop that does not end: `upload at shutdown failed; retrying until the flush timeout` means the bucket fails ([StrataBlockUploadsFailing](#stratablockuploadsfailing)).",
			Act: "- Replaying: let it finish, with the memory it had before the restart and some (a replay rebuilds the heads).\n" +
				"- Stopping with uploads failing: fix the bucket; after `STRATA_FLUSH_TIMEOUT` it exits and the blocks left on its volume upload at its next start.",
		},
		{
			Name: "StrataWALReplaySlow",
			Expr: `sum by (namespace, job, pod, instance) (prometheus_tsdb_data_replay_duration_seconds{tenant!=""}) > 300` +
				` and on (namespace, job, pod, instance) (time() - process_start_time_seconds < 3600)`,
			Severity: Warning,
			Summary:  `Block builder {{ $labels.instance }} took {{ $value | humanizeDuration }} to replay its WALs`,
			Description: `At its last start {{ $labels.instance }} replayed its tenants' WALs for {{ $value | humanizeDuration }}, ` +
				`not taking writes all that time; every restart and rollout takes as long again.`,
			Meaning: "A block builder replays the WAL of each tenant on its disk, one after the other, before it is ready. " +
				"The WAL holds what the head holds: up to 1.5 block durations of samples of every series. Long replays " +
				"come from many series per block builder, or a slow disk. The alert stays for the hour after the start.",
			Confirm: "- `prometheus_tsdb_data_replay_duration_seconds` by tenant: one tenant or all of them.\n" +
				"- `prometheus_tsdb_head_series` and `prometheus_tsdb_wal_storage_size_bytes` by tenant.\n" +
				"- The volume's I/O: a network disk with little throughput replays slowly.",
			Act: "- Spread the series over more block builders (`blockbuilder.replicas`).\n" +
				"- A faster storage class for the block builders' volumes.\n" +
				"- During rollouts, keep the PodDisruptionBudget so that only RF minus quorum replay at once.",
		},
		{
			Name:     "StrataWALRenewed",
			Expr:     `increase(strata_blockbuilder_wal_renewals_total[1h]) > 0`,
			Severity: Warning,
			Summary:  `Block builder {{ $labels.instance }} renewed a tenant's WAL after a failed write`,
			Description: `A WAL write failed on {{ $labels.instance }} in the last hour (a full disk or an I/O error): the tenant's head ` +
				`was flushed into blocks and its WAL started anew, and its writes were answered 503 until then. The log names the tenant.`,
			Meaning: "Prometheus' WAL cannot be trusted after a failed write (a record may be torn), so the block builder " +
				"flushes the tenant's head into blocks, deletes its WAL and reopens it on a new one before it takes that " +
				"tenant's writes again. Nothing acknowledged is lost, but the cause (nearly always the disk) is still there.",
			Confirm: "- The log: `the WAL failed; the head is flushed into blocks and the tenant reopens on a new WAL`, with the tenant.\n" +
				"- The volume: `kubelet_volume_stats_available_bytes` of the pod's claim ([StrataBlockBuilderDiskFull](#stratablockbuilderdiskfull)).\n" +
				"- `prometheus_tsdb_wal_writes_failed_total` by tenant.",
			Act: "- Free or add space: grow the PersistentVolumeClaim (where the storage class allows it), or shorten " +
				"`STRATA_LOCAL_RETENTION` (uploaded blocks kept for queries); blocks not uploaded yet must stay.\n" +
				"- Uploads failing let blocks pile up on the disk: fix those first ([StrataBlockUploadsFailing](#stratablockuploadsfailing)).",
		},
		{
			Name:     "StrataTenantsNearLimit",
			Expr:     `strata_blockbuilder_open_tenants / (strata_blockbuilder_max_tenants > 0) > 0.8`,
			For:      "15m",
			Severity: Warning,
			Summary:  `Block builder {{ $labels.instance }} holds {{ $value | humanizePercentage }} of the tenants it may open`,
			Description: `{{ $labels.instance }} has more than 80% of STRATA_MAX_TENANTS open. A write that would open one more tenant ` +
				`is answered 503 until an idle tenant closes.`,
			Meaning: "Each open tenant costs a TSDB (about 0.7 MB and three file descriptors even with one series). " +
				"`STRATA_MAX_TENANTS` bounds them so that made-up tenant IDs cannot exhaust a block builder; at the " +
				"bound, writes for new tenants are refused with 503 (the sender retries) until a tenant has been idle " +
				"for `STRATA_TENANT_IDLE_TIMEOUT` and closes. A `strata_blockbuilder_max_tenants` of 0 means no bound and never fires.",
			Confirm: "- `strata_blockbuilder_open_tenants` and `strata_blockbuilder_max_tenants` per block builder.\n" +
				"- `count by (instance) (prometheus_tsdb_head_series{tenant!=\"\"})`: the tenants, and which hold few series.\n" +
				"- Writes refused for this: 503s in `strata_blockbuilder_write_requests_total{tenant=\"unknown\"}`, and the message `too many open tenants`.",
			Act: "- Real tenants: raise `STRATA_MAX_TENANTS` (`blockbuilder.extraEnv`), with memory for them.\n" +
				"- Tenants that should not exist (a sender setting a header per host): fix the senders, or require tokens " +
				"limited to tenants (`STRATA_BEARER_TOKEN_FILE`).",
		},
		{
			Name: "StrataTenantSeriesNearLimit",
			Expr: `max by (namespace, job, pod, instance, tenant) (prometheus_tsdb_head_series{tenant!=""})` +
				` / on (namespace, job, pod, instance, tenant)` +
				` max by (namespace, job, pod, instance, tenant) (strata_blockbuilder_max_series_per_tenant > 0) > 0.8`,
			For:      "15m",
			Severity: Warning,
			Summary:  `Tenant {{ $labels.tenant }} fills {{ $value | humanizePercentage }} of its head on block builder {{ $labels.instance }}`,
			Description: `Tenant {{ $labels.tenant }}'s head on {{ $labels.instance }} holds more than 80% of its max_series_per_tenant. ` +
				`At the bound its new series are refused with 413, which senders drop.`,
			Meaning: "Each tenant's head may hold `max_series_per_tenant` series on a block builder (the limits file, or `STRATA_MAX_SERIES_PER_TENANT`); a new series " +
				"over that is refused ([StrataSeriesRefusedOverLimit](#strataseriesrefusedoverlimit)) while the series " +
				"already in the head keep being written. This alert comes before that, while there is time to act. A " +
				"`strata_blockbuilder_max_series_per_tenant` of 0 means no bound and never fires.",
			Confirm: "- `prometheus_tsdb_head_series{tenant=...}` per block builder, against `strata_blockbuilder_max_series_per_tenant`.\n" +
				"- `sum by (tenant) (rate(prometheus_tsdb_head_series_created_total{tenant!=\"\"}[1h]))`: a tenant churning series, " +
				"whose stopped series leave the head only at the next block cut.",
			Act: "- A tenant that grew for real: raise its `max_series_per_tenant` in the limits file, or `STRATA_MAX_SERIES_PER_TENANT` for all (with 1.5 KB of memory per series), or add block builders, which spreads its series.\n" +
				"- Churn: fix the sender's labels (drop the offending label with relabeling).",
		},
		{
			Name:     "StrataSeriesRefusedOverLimit",
			Expr:     `rate(strata_blockbuilder_rejected_series_total{kind="limit"}[5m]) > 0`,
			For:      "5m",
			Severity: Warning,
			Summary:  `Block builder {{ $labels.instance }} refuses new series of tenant {{ $labels.tenant }} over a limit`,
			Description: `{{ $value | humanize }} series/s of tenant {{ $labels.tenant }} are refused by {{ $labels.instance }} as over a ` +
				`limit, most often STRATA_MAX_SERIES_PER_TENANT (the tenant's head is full). Senders drop them (413).`,
			Meaning: "A new series of a tenant whose head already holds `STRATA_MAX_SERIES_PER_TENANT` series is refused " +
				"(the series already in the head keep being written); so are series over the label limits when a " +
				"block builder is written to directly. Those samples are lost: senders do not retry a 413. Series that " +
				"stopped leave the head at each block cut, which makes room again. " +
				"[StrataTenantSeriesNearLimit](#stratatenantseriesnearlimit) warns before the bound.",
			Confirm: "- `prometheus_tsdb_head_series{tenant=...}` per block builder, against `strata_blockbuilder_max_series_per_tenant`.\n" +
				"- The answers' messages (in the sender's log, and the router's `write failed`): `tenant ... has N series in this block builder's head, the most its max_series_per_tenant (STRATA_MAX_SERIES_PER_TENANT) allows`.\n" +
				"- `sum by (tenant) (rate(prometheus_tsdb_head_series_created_total{tenant!=\"\"}[1h]))`: a tenant churning series (a label with a timestamp or an ID in it).",
			Act: "- A tenant that grew for real: raise its `max_series_per_tenant` in the limits file, or `STRATA_MAX_SERIES_PER_TENANT` for all (with 1.5 KB of memory per series), or add block builders, which spreads its series.\n" +
				"- Churn: fix the sender's labels (drop the offending label with relabeling).",
		},
		{
			Name:     "StrataCompactionsFailing",
			Expr:     `increase(prometheus_tsdb_compactions_failed_total{tenant!=""}[1h]) > 0`,
			Severity: Warning,
			Summary:  `Block builder {{ $labels.instance }} fails to cut blocks of tenant {{ $labels.tenant }}`,
			Description: `Cutting tenant {{ $labels.tenant }}'s head into a block failed on {{ $labels.instance }} in the last hour: ` +
				`its head and WAL keep growing until a cut succeeds, and nothing reaches the bucket meanwhile.`,
			Meaning: "Every upload interval the block builder cuts the finished part of each head into a block, which the " +
				"shipper then uploads. A failed cut (disk full, I/O error, a corrupt chunk) leaves the samples in the " +
				"head and the WAL: memory, WAL replay time and the backlog grow.",
			Confirm: "- The log: `cut blocks` with the tenant and the error.\n" +
				"- The disk: [StrataBlockBuilderDiskFull](#stratablockbuilderdiskfull); a block's chunk file needs 64 MiB free.\n" +
				"- `prometheus_tsdb_head_max_time - prometheus_tsdb_head_min_time` by tenant: a head spanning much more than 1.5 block durations is not being cut.",
			Act: "- Free disk space, and the next cut succeeds.\n" +
				"- Another error (a corrupt chunk or index named in the log): report it with the log lines; the samples stay in the head and the WAL meanwhile.",
		},
	}},
	{Name: "strata-shipper", Alerts: []Alert{
		{
			Name:     "StrataBlockUploadsFailing",
			Expr:     `increase(strata_shipper_upload_failures_total[15m]) > 0`,
			For:      "15m",
			Severity: Warning,
			Summary:  `Block uploads of tenant {{ $labels.tenant }} keep failing on {{ $labels.instance }}`,
			Description: `Uploads of tenant {{ $labels.tenant }}'s blocks from {{ $labels.instance }} have failed for 15 minutes. ` +
				`The blocks stay on its disk and are retried; until they upload, they exist on that volume only.`,
			Meaning: "The shipper uploads each finished block (chunks, index, then `meta.json`) and records it in its " +
				"ledger; a failed upload is retried after `STRATA_UPLOAD_INTERVAL`, then after twice as long each time, " +
				"up to 5 minutes. Failures for this long are the bucket refusing or unreachable, not a blip.",
			Confirm: "- The log: `upload blocks; will retry` with the error and `consecutive_failures`.\n" +
				"- The Bucket dashboard: `objstore_bucket_operation_failures_total` by operation shows which calls fail.\n" +
				"- `strata bucket ls` with the block builders' bucket settings: does the bucket answer and list, with these credentials?\n" +
				"- `strata bucket verify`: a block left partial by an upload cut short shows as a directory without `meta.json`; the shipper uploads such blocks again whole.",
			Act: "- Credentials or permissions (403): fix the role (IRSA picks it up by itself) or the Secret; keys given as " +
				"environment variables (`objstore.s3`) take effect when the block builders restart.\n" +
				"- The bucket unreachable: network policies, the endpoint, DNS.\n" +
				"- Watch the disk while the backlog grows: [StrataBlockBuilderDiskFilling](#stratablockbuilderdiskfilling).",
		},
		{
			Name:     "StrataBlockUploadsLate",
			Expr:     `strata_shipper_oldest_pending_block_age_seconds > 1800`,
			For:      "5m",
			Severity: Warning,
			Summary:  `Tenant {{ $labels.tenant }}'s oldest block on {{ $labels.instance }} has waited {{ $value | humanizeDuration }} to upload`,
			Description: `A block of tenant {{ $labels.tenant }} was cut {{ $value | humanizeDuration }} ago and is not in the bucket yet: ` +
				`queries of the bucket (Store Gateway) miss it, and it exists on {{ $labels.instance }}'s volume only.`,
			Meaning: "A block is uploaded within an upload interval (30s) of being cut. A block that has waited half an " +
				"hour means uploads fail or hang for that tenant. The data is safe on the volume (blocks are deleted " +
				"locally only once the ledger records their upload), but nowhere else.",
			Confirm: "- `strata_shipper_pending_blocks` by tenant: how many wait.\n" +
				"- [StrataBlockUploadsFailing](#stratablockuploadsfailing) and [StrataBlockUploadHanging](#stratablockuploadhanging): failing or hanging.\n" +
				"- `time() - strata_shipper_last_successful_upload_timestamp_seconds` by tenant: since when nothing reached the bucket.",
			Act: "- Fix the bucket as for failing uploads; the backlog uploads by itself, oldest first.",
		},
		{
			Name:     "StrataBlockUploadsVeryLate",
			Expr:     `strata_shipper_oldest_pending_block_age_seconds > 10800`,
			For:      "5m",
			Severity: Critical,
			Summary:  `Tenant {{ $labels.tenant }}'s oldest block on {{ $labels.instance }} has waited {{ $value | humanizeDuration }} to upload`,
			Description: `A block of tenant {{ $labels.tenant }} has waited more than 3 hours for its upload. It exists on ` +
				`{{ $labels.instance }}'s volume only: losing that volume loses it, and the backlog is filling the disk.`,
			Meaning: "As [StrataBlockUploadsLate](#stratablockuploadslate), for long enough that the data is at risk: " +
				"the volume holds hours of blocks that nothing else has, and a block builder whose disk fills stops " +
				"taking writes (503).",
			Confirm: "- As for [StrataBlockUploadsLate](#stratablockuploadslate).\n" +
				"- The disk: `kubelet_volume_stats_available_bytes` of the pod's claim.",
			Act: "- Fix the bucket first; do not delete the pod's volume or its PersistentVolumeClaim.\n" +
				"- If the disk is about to fill, grow the claim before it does.\n" +
				"- A block builder scaled away keeps its claim; its blocks upload when a block builder runs on that claim again (see \"Graceful stop and scale-down\" in docs/ARCHITECTURE.md).",
		},
		{
			Name: "StrataBlockUploadHanging",
			Expr: `time() - strata_shipper_upload_in_progress_since_timestamp_seconds > 900` +
				` and strata_shipper_upload_in_progress_since_timestamp_seconds > 0`,
			For:      "5m",
			Severity: Warning,
			Summary:  `An upload of tenant {{ $labels.tenant }}'s blocks has run for {{ $value | humanizeDuration }} on {{ $labels.instance }}`,
			Description: `The block upload in progress for tenant {{ $labels.tenant }} on {{ $labels.instance }} started ` +
				`{{ $value | humanizeDuration }} ago and has not ended: the bucket accepts the connection but does not answer.`,
			Meaning: "A tenant's uploads run one at a time, so an upload that never ends holds back every later block of " +
				"that tenant, without counting a failure. Blocks are small enough to upload in seconds to minutes.",
			Confirm: "- The log: `block upload slow; the bucket may be hanging` repeats with the block and the time elapsed.\n" +
				"- The Bucket dashboard: the latency of `upload` and `exists` operations.",
			Act: "- The bucket or a proxy in front of it hangs: restore it; the upload then ends (or fails and is retried).\n" +
				"- A restart does not help while the bucket hangs: a stop flushes and uploads first, for up to `STRATA_FLUSH_TIMEOUT`, and what is left uploads after the next start.",
		},
	}},
	{Name: "strata-disk", Alerts: []Alert{
		{
			Name: "StrataBlockBuilderDiskFilling",
			Expr: `kubelet_volume_stats_available_bytes{` + blockBuilderPVC + `} / kubelet_volume_stats_capacity_bytes{` + blockBuilderPVC + `} < 0.15` +
				` and predict_linear(kubelet_volume_stats_available_bytes{` + blockBuilderPVC + `}[6h], 4 * 3600) < 0`,
			For:      "1h",
			Severity: Warning,
			Summary:  `Volume {{ $labels.persistentvolumeclaim }} of a block builder fills within 4 hours`,
			Description: `Only {{ $value | humanizePercentage }} of {{ $labels.persistentvolumeclaim }} is free and, at the rate of ` +
				`the last 6 hours, it is full within 4 hours. A block builder whose disk is full answers writes with 503.`,
			Meaning: "The volume holds each tenant's WAL and head chunks, the blocks not uploaded yet, and uploaded blocks " +
				"for `STRATA_LOCAL_RETENTION` (6h). It grows when the block builder gets more series, or when uploads " +
				"fail and blocks pile up.",
			Confirm: "- [StrataBlockUploadsLate](#stratablockuploadslate): a backlog of blocks not uploaded.\n" +
				"- `sum by (tenant) (prometheus_tsdb_wal_storage_size_bytes{tenant!=\"\"})` and `prometheus_tsdb_storage_blocks_bytes` by tenant: what takes the space.\n" +
				"- The Block builders dashboard: head series by block builder.",
			Act: "- Uploads failing: fix them first; the uploaded blocks leave after `STRATA_LOCAL_RETENTION`.\n" +
				"- More series: grow the claim (`blockbuilder.persistence.size` applies to new claims only; existing ones are grown with `kubectl edit pvc` where the storage class allows expansion), shorten `STRATA_LOCAL_RETENTION`, or add block builders.",
		},
		{
			Name:     "StrataBlockBuilderDiskFull",
			Expr:     `kubelet_volume_stats_available_bytes{` + blockBuilderPVC + `} / kubelet_volume_stats_capacity_bytes{` + blockBuilderPVC + `} < 0.05`,
			For:      "5m",
			Severity: Critical,
			Summary:  `Volume {{ $labels.persistentvolumeclaim }} of a block builder is {{ $value | humanizePercentage }} free`,
			Description: `{{ $labels.persistentvolumeclaim }} is nearly full. When a WAL write fails for lack of space the block ` +
				`builder answers that tenant's writes with 503 until it has flushed the head into blocks, which needs space too.`,
			Meaning: "A full disk fails WAL writes: the write gets a 503 saying so (the sender retries), and the block " +
				"builder renews the tenant's WAL once it can flush its head (see \"A full disk\" in docs/ARCHITECTURE.md, " +
				"and [StrataWALRenewed](#stratawalrenewed)). With a quorum of a series' owners full, its writes fail.",
			Confirm: "- As for [StrataBlockBuilderDiskFilling](#stratablockbuilderdiskfilling).\n" +
				"- `sum by (tenant, code) (rate(strata_blockbuilder_write_requests_total{code=\"503\"}[5m]))` on that block builder.",
			Act: "- Grow the claim now, where the storage class allows expansion.\n" +
				"- Shorten `STRATA_LOCAL_RETENTION` to drop uploaded blocks sooner (a restart with the new value).\n" +
				"- Never delete block directories by hand: a block not uploaded yet exists nowhere else.",
		},
	}},
}
