// Package monitoring is the one source of Strata's alerts, dashboards and
// runbook. Groups holds every alert (its PromQL, severity, annotations and
// its section of the runbook), Dashboards every Grafana dashboard, and
// Files renders them into the files the repository ships:
//
//   - monitoring/strata.rules.yml, a plain Prometheus rules file (promtool
//     checks and unit-tests it: rules_test.yml);
//   - helm/strata/templates/prometheusrule.yaml, the same alerts as a
//     PrometheusRule of the chart, each selector limited to the release's
//     namespace and the disk alerts to its block builders' claims;
//   - helm/strata/dashboards/*.json and the ConfigMap template that carries
//     them to kube-prometheus-stack's Grafana sidecar;
//   - docs/runbook.md.
//
// `make monitoring` (go run ./monitoring/cmd/gen) writes them; a test
// fails when a file in the repository is not what Files gives, so the
// generated files cannot drift from this package. Other tests hold every
// expression to the metrics a real router and block builder expose, and
// evaluate every panel against a real Prometheus scraping them.
package monitoring
