// Package helm holds no code: its tests prove the Helm chart in strata/.
// They lint and render the chart with the value sets of testdata/, install
// each into a real kube-apiserver (with etcd) started on loopback, and run
// the real strata binaries with exactly the arguments, environment and
// files the rendered manifests give them, writing through them into a real
// S3 server; for TLS and bearer tokens, with certificates and tokens in
// Secrets laid out as cert-manager and the kubelet lay them out.
//
// The one thing to know before changing the chart: the wiring test reads
// the rendered Deployment and StatefulSet, so a renamed STRATA_* variable,
// mount path or port in a template fails it rather than a cluster.
package helm
