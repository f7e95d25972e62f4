{{/*
Naming and labels, following the conventions of `helm create` (Kubernetes recommended labels).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "edgefed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource-name prefix: fullnameOverride, else <release>-<name>, else <release> when it already contains
the name. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "edgefed.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value: <name>-<version> */}}
{{- define "edgefed.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "edgefed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgefed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "edgefed.labels" -}}
helm.sh/chart: {{ include "edgefed.chart" . }}
{{ include "edgefed.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edgefed
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* What each role's ServiceAccount runs (comments of templates/serviceaccounts.yaml). */}}
{{- define "edgefed.roleDoes" -}}
{{- if eq . "driver" }}the task Workflow's resource steps: create and read round Workflows, patch its progress
{{- else if eq . "cloud" }}init, plan, aggregate, evaluate: the cloud store only, never on an edge node
{{- else }}validate and train, each on its own edge's node: that site's store and its prefix of the cloud's
{{- end }}
{{- end }}

{{/* The step image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "edgefed.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The cloud store URL the steps get as --store (same form as edges.store_url). */}}
{{- define "edgefed.storeURL" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.store.secure) .Values.store.endpoint }}
{{- end }}

{{/* Every edge's own store, on its node (same form as edges.site_store_url; the kubelet expands the variable). */}}
{{- define "edgefed.siteStoreURL" -}}
{{- printf "%s://$(EDGEFED_NODE_IP):%v" (ternary "https" "http" .Values.siteStore.secure) .Values.siteStore.port }}
{{- end }}

{{/* An edge's cloud store Secret: credentialsSecret, default edgefed-edge-<name> (as EdgeSpec.secret_name). */}}
{{- define "edgefed.edgeSecret" -}}
{{- default (printf "edgefed-edge-%s" .name) .credentialsSecret }}
{{- end }}

{{/* An edge's own store Secret: siteCredentialsSecret, default edgefed-site-<name> (as EdgeSpec.site_secret_name). */}}
{{- define "edgefed.siteSecret" -}}
{{- default (printf "edgefed-site-%s" .name) .siteCredentialsSecret }}
{{- end }}

{{/*
What JSON Schema cannot express: edge names must be unique. Fails rendering with the
offending index. Included by the templates that iterate over the edges.
*/}}
{{- define "edgefed.validateEdges" -}}
{{- $seen := dict }}
{{- range $i, $edge := .Values.edges }}
{{- if hasKey $seen $edge.name }}
{{- fail (printf "edges[%d].name %q is a duplicate of edges[%v].name: edge names must be unique" $i $edge.name (get $seen $edge.name)) }}
{{- end }}
{{- $_ := set $seen $edge.name $i }}
{{- end }}
{{- end }}

{{/* An identity's two env variables from its Secret (keys accessKey, secretKey): dict secret, prefix. */}}
{{- define "edgefed.servingCredentials" -}}
- name: {{ .prefix }}_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ .secret }}, key: accessKey}}
- name: {{ .prefix }}_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ .secret }}, key: secretKey}}
{{- end }}

{{/*
The inference service's pod spec (templates/serving.yaml), hardened as the step pods are: dict root, account,
args, env (YAML list text), resources, placement. runAsUser/runAsGroup 10001 is the image's user
(images/Dockerfile), as in the generated workflows.
*/}}
{{- define "edgefed.servingPod" -}}
serviceAccountName: {{ .account }}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile: {type: RuntimeDefault}
containers:
  - name: inference
    image: {{ include "edgefed.image" .root | quote }}
    command: [python, -m, edgefed.steps.serving]
    args:
      {{- toYaml .args | nindent 6 }}
    ports:
      - {name: http, containerPort: 8080}
    env:
      {{- .env | nindent 6 }}
      {{- if .root.Values.store.caConfigMap }}
      - {name: EDGEFED_CA_FILE, value: /etc/edgefed/ca/ca.crt}
      {{- end }}
    readinessProbe:
      httpGet: {path: /readyz, port: http}
      periodSeconds: 10
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 10
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      readOnlyRootFilesystem: true
      runAsNonRoot: true
    volumeMounts:
      - {name: tmp, mountPath: /tmp}
      {{- if .root.Values.store.caConfigMap }}
      - {name: store-ca, mountPath: /etc/edgefed/ca, readOnly: true}
      {{- end }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
volumes:
  - {name: tmp, emptyDir: {}}
  {{- with .root.Values.store.caConfigMap }}
  - name: store-ca
    configMap:
      name: {{ . }}
      items: [{key: ca.crt, path: ca.crt}]
  {{- end }}
{{- toYaml .placement | nindent 0 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
