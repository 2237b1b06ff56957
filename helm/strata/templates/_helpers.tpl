{{/* Names, labels and the settings several templates share. */}}

{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource: <release>-strata, or the release name alone
when it already contains the chart name. Kept to 40 characters so that
"<prefix>-blockbuilder-<ordinal>" and the pod's controller-revision-hash
label stay within Kubernetes' 63.
*/}}
{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "strata.router.fullname" -}}
{{ include "strata.fullname" . }}-router
{{- end }}

{{- define "strata.blockbuilder.fullname" -}}
{{ include "strata.fullname" . }}-blockbuilder
{{- end }}

{{/* The headless service that gives each block builder a stable DNS name. */}}
{{- define "strata.blockbuilder.headless" -}}
{{ include "strata.fullname" . }}-blockbuilder-headless
{{- end }}

{{/* The name senders write to, and the routers' certificate must carry. */}}
{{- define "strata.router.dnsName" -}}
{{ include "strata.router.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end }}

{{/*
The one DNS name that covers every block builder's address in the
generated hashring, whatever blockbuilder.replicas is: a wildcard over the
headless service.
*/}}
{{- define "strata.blockbuilder.dnsWildcard" -}}
*.{{ include "strata.blockbuilder.headless" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end }}

{{- define "strata.hashrings.name" -}}
{{ include "strata.fullname" . }}-hashrings
{{- end }}

{{- define "strata.limits.name" -}}
{{ include "strata.fullname" . }}-limits
{{- end }}

{{- define "strata.objstore.secretName" -}}
{{ include "strata.fullname" . }}-objstore
{{- end }}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "strata.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the release's pods; never change them (selectors are immutable). */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "strata.router.selectorLabels" -}}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/component: router
{{- end }}

{{- define "strata.blockbuilder.selectorLabels" -}}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/component: blockbuilder
{{- end }}

{{/* The container port both components serve remote-write, metrics and health on. */}}
{{- define "strata.httpPort" -}}19291{{- end }}
{{/* The block builders' Thanos StoreAPI port. */}}
{{- define "strata.grpcPort" -}}10901{{- end }}

{{/* Write quorum of the replication factor: a majority. */}}
{{- define "strata.quorum" -}}
{{ add (div (int .Values.replicationFactor) 2) 1 }}
{{- end }}

{{/*
The block builders' addresses, as the routers reach them: the stable DNS
name Kubernetes gives each StatefulSet pod through the headless service,
<pod>.<service>.<namespace>.svc.<cluster domain>.
*/}}
{{- define "strata.blockbuilder.endpoints" -}}
{{- $pod := include "strata.blockbuilder.fullname" . }}
{{- $svc := include "strata.blockbuilder.headless" . }}
{{- $list := list }}
{{- range $i := until (int .Values.blockbuilder.replicas) }}
{{- $list = append $list (printf "%s-%d.%s.%s.svc.%s:%s" $pod $i $svc $.Release.Namespace $.Values.clusterDomain (include "strata.httpPort" $)) }}
{{- end }}
{{- toJson $list }}
{{- end }}

{{/* The hashrings.json the routers read. */}}
{{- define "strata.hashrings.json" -}}
{{- if .Values.hashrings.custom }}
{{- .Values.hashrings.custom }}
{{- else }}
{{- $ring := dict "hashring" .Values.hashrings.name "algorithm" .Values.hashrings.algorithm "endpoints" (include "strata.blockbuilder.endpoints" . | fromJsonArray) }}
{{- list $ring | toPrettyJson }}
{{- end }}
{{- end }}

{{/*
Environment variables both components read. Values are quoted: Kubernetes
takes strings only.
*/}}
{{- define "strata.commonEnv" -}}
- name: STRATA_HTTP_LISTEN
  value: ":{{ include "strata.httpPort" . }}"
- name: STRATA_TENANT_HEADER
  value: {{ .Values.tenantHeader | quote }}
- name: STRATA_DEFAULT_TENANT
  value: {{ .Values.defaultTenant | quote }}
- name: STRATA_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
- name: STRATA_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
{{- range $k, $v := .Values.limits.defaults }}
- name: STRATA_LIMIT_{{ upper $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{/*
Checks of values that the schema cannot express. They fail the render with
a message naming the value to fix.
*/}}
{{- define "strata.validate" -}}
{{- $v := .Values }}
{{- $buckets := 0 }}
{{- if $v.objstore.s3.bucket }}{{ $buckets = add1 $buckets }}{{ end }}
{{- if $v.objstore.config }}{{ $buckets = add1 $buckets }}{{ end }}
{{- if $v.objstore.existingConfigSecret }}{{ $buckets = add1 $buckets }}{{ end }}
{{- if ne (int $buckets) 1 }}
{{- fail "objstore: set exactly one of objstore.s3.bucket, objstore.config and objstore.existingConfigSecret" }}
{{- end }}
{{- if not $v.objstore.s3.bucket }}
{{- if or $v.objstore.s3.endpoint $v.objstore.s3.accessKey $v.objstore.s3.secretKey $v.objstore.s3.existingSecret $v.objstore.s3.insecure $v.objstore.s3.pathStyle }}
{{- fail "objstore.s3: settings are given but objstore.s3.bucket is empty" }}
{{- end }}
{{- end }}
{{- if ne (empty $v.objstore.s3.accessKey) (empty $v.objstore.s3.secretKey) }}
{{- fail "objstore.s3: set accessKey and secretKey together (or neither, for the AWS credential chain)" }}
{{- end }}
{{- if and $v.objstore.s3.existingSecret (or $v.objstore.s3.accessKey $v.objstore.s3.secretKey) }}
{{- fail "objstore.s3: set either existingSecret or accessKey/secretKey, not both" }}
{{- end }}
{{- if not $v.hashrings.custom }}
{{- if gt (int $v.replicationFactor) (int $v.blockbuilder.replicas) }}
{{- fail (printf "replicationFactor (%d) is more than blockbuilder.replicas (%d): every series needs that many block builders" (int $v.replicationFactor) (int $v.blockbuilder.replicas)) }}
{{- end }}
{{- else }}
{{- /* fromJsonArray does not fail on bad JSON: it returns the error as the only element. */}}
{{- $rings := fromJsonArray $v.hashrings.custom }}
{{- if not $rings }}
{{- fail "hashrings.custom must be a hashrings.json: a JSON array of hashrings, [{\"endpoints\": [...]}, ...]" }}
{{- end }}
{{- range $rings }}
{{- if not (kindIs "map" .) }}
{{- fail (printf "hashrings.custom must be a hashrings.json, a JSON array of hashring objects: %v" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $k, $_ := $v.blockbuilder.externalLabels }}
{{- if or (eq $k $v.blockbuilder.replicaLabel) (eq $k $v.blockbuilder.tenantLabel) }}
{{- fail (printf "blockbuilder.externalLabels: %q is set by the block builder itself (replicaLabel or tenantLabel)" $k) }}
{{- end }}
{{- end }}
{{- if eq $v.blockbuilder.replicaLabel $v.blockbuilder.tenantLabel }}
{{- fail "blockbuilder.replicaLabel and blockbuilder.tenantLabel must differ" }}
{{- end }}
{{- include "strata.validateSecurity" . }}
{{- end }}

{{/* The checks of tls, auth and the ServiceMonitor's client certificate. */}}
{{- define "strata.validateSecurity" -}}
{{- $v := .Values }}
{{- range $name := list "router" "blockbuilder" }}
{{- $t := index $v.tls $name }}
{{- if and $t.enabled (not $t.existingSecret) }}
{{- fail (printf "tls.%s.enabled needs tls.%s.existingSecret: a Secret with tls.crt and tls.key (as cert-manager writes them)" $name $name) }}
{{- end }}
{{- if and (not $t.enabled) (or $t.existingSecret $t.ca.existingSecret $t.clientCA.enabled $t.clientCA.existingSecret) }}
{{- fail (printf "tls.%s: settings are given but tls.%s.enabled is false" $name $name) }}
{{- end }}
{{- if and $t.clientCA.existingSecret (not $t.clientCA.enabled) }}
{{- fail (printf "tls.%s.clientCA.existingSecret is set but tls.%s.clientCA.enabled is false" $name $name) }}
{{- end }}
{{- if and $t.clientCA.enabled $v.serviceMonitor.enabled (not $v.serviceMonitor.clientCertSecret) }}
{{- fail (printf "tls.%s.clientCA.enabled: the ServiceMonitor's Prometheus must present a client certificate; set serviceMonitor.clientCertSecret" $name) }}
{{- end }}
{{- end }}
{{- if and (not $v.tls.blockbuilder.enabled) (or $v.tls.forward.serverName $v.tls.forward.clientCertSecret) }}
{{- fail "tls.forward is the routers' HTTPS towards the block builders: set tls.blockbuilder.enabled too" }}
{{- end }}
{{- if and $v.tenantCertificateField (not $v.tls.router.clientCA.enabled) }}
{{- fail "tenantCertificateField needs tls.router.clientCA.enabled: the tenant is taken from client certificates, which only mutual TLS verifies" }}
{{- end }}
{{- if and $v.tls.blockbuilder.clientCA.enabled (not $v.tls.forward.clientCertSecret) }}
{{- fail "tls.blockbuilder.clientCA.enabled: the routers must present a client certificate to the block builders; set tls.forward.clientCertSecret" }}
{{- end }}
{{- if and $v.serviceMonitor.clientCertSecret (not (and $v.serviceMonitor.enabled (or $v.tls.router.clientCA.enabled $v.tls.blockbuilder.clientCA.enabled))) }}
{{- fail "serviceMonitor.clientCertSecret is only used by an enabled ServiceMonitor scraping a listener with tls.router.clientCA or tls.blockbuilder.clientCA" }}
{{- end }}
{{- end }}

{{/*
Whether the release has a ServiceMonitor: serviceMonitor.enabled, and the
cluster knows the kind. Without the Prometheus Operator's CRD (it comes
with kube-prometheus-stack) the API server would refuse the whole release
for that one object; the ServiceMonitor is left out instead, the install
notes say so, and a helm upgrade once the CRD is there adds it. Non-empty
means yes.
*/}}
{{- define "strata.serviceMonitor.enabled" -}}
{{- if and .Values.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") }}true{{ end }}
{{- end }}

{{/* A map of labels as STRATA_EXTERNAL_LABELS wants it: k=v,k=v, sorted by name. */}}
{{- define "strata.externalLabels" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
Where the chart mounts the Secrets of tls and auth. Each is a directory
(never subPath): the kubelet renews a Secret volume by swapping a symlink,
and Strata re-reads the files when they change.
*/}}
{{- define "strata.path.tls" -}}/etc/strata/tls/server{{- end }}
{{- define "strata.path.clientCA" -}}/etc/strata/tls/client-ca{{- end }}
{{- define "strata.path.forwardCA" -}}/etc/strata/tls/forward-ca{{- end }}
{{- define "strata.path.forwardClient" -}}/etc/strata/tls/forward-client{{- end }}
{{- define "strata.path.tokens" -}}/etc/strata/auth/tokens{{- end }}
{{- define "strata.path.forwardToken" -}}/etc/strata/auth/forward-token{{- end }}

{{/* The Secret and key of the CA that verifies a listener (tls.router or tls.blockbuilder). */}}
{{- define "strata.tls.caSecret" -}}
{{ default .existingSecret .ca.existingSecret }}
{{- end }}

{{/*
A Secret volume that projects only keys (a list): a pod gets the files it
reads, never the rest of the Secret (another component's private key, a
CA's key). Argument: (dict "name" <volume> "secret" <name> "keys" <list>).
*/}}
{{- define "strata.secretVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    items:
      {{- range .keys }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- end }}

{{/* The listener's TLS, given tls.router or tls.blockbuilder: environment. */}}
{{- define "strata.tls.env" -}}
{{- if .enabled }}
- name: STRATA_TLS_CERT_FILE
  value: {{ include "strata.path.tls" . }}/tls.crt
- name: STRATA_TLS_KEY_FILE
  value: {{ include "strata.path.tls" . }}/tls.key
{{- if .clientCA.enabled }}
- name: STRATA_TLS_CLIENT_CA_FILE
  value: {{ include "strata.path.clientCA" . }}/{{ .clientCA.key }}
{{- end }}
{{- end }}
{{- end }}

{{/* The listener's TLS: volume mounts. */}}
{{- define "strata.tls.volumeMounts" -}}
{{- if .enabled }}
- name: tls-server
  mountPath: {{ include "strata.path.tls" . }}
  readOnly: true
{{- if .clientCA.enabled }}
- name: tls-client-ca
  mountPath: {{ include "strata.path.clientCA" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/* The listener's TLS: volumes. */}}
{{- define "strata.tls.volumes" -}}
{{- if .enabled }}
{{ include "strata.secretVolume" (dict "name" "tls-server" "secret" .existingSecret "keys" (list "tls.crt" "tls.key")) }}
{{- if .clientCA.enabled }}
{{ include "strata.secretVolume" (dict "name" "tls-client-ca" "secret" (default .existingSecret .clientCA.existingSecret) "keys" (list .clientCA.key)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Readiness and liveness probes of a component's http port, given its TLS
values. The kubelet does not verify a probe's certificate, so HTTPS
probes work with any; but it cannot present a client certificate, so
under mutual TLS every HTTP probe would fail the handshake and the pod
would never be ready. There it checks that the port takes connections.
*/}}
{{- define "strata.probes" -}}
{{- if and .enabled .clientCA.enabled }}
# Mutual TLS: the kubelet cannot present a client certificate, so it
# checks that the port takes connections.
readinessProbe:
  tcpSocket:
    port: http
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  tcpSocket:
    port: http
  periodSeconds: 10
  failureThreshold: 6
{{- else }}
readinessProbe:
  httpGet:
    path: /-/ready
    port: http
    {{- if .enabled }}
    scheme: HTTPS
    {{- end }}
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /-/healthy
    port: http
    {{- if .enabled }}
    scheme: HTTPS
    {{- end }}
  periodSeconds: 10
  failureThreshold: 6
{{- end }}
{{- end }}
