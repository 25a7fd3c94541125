{{/*
Names, labels and the few computed values that several templates share.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release name suffixed with the
chart name unless it already contains it. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "api.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. "latest" is refused. */}}
{{- define "api.imageTag" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag resolves to \"latest\": pin a version (set image.tag, or the chart's appVersion)" }}
{{- end }}
{{- $tag }}
{{- end }}

{{/* The image tag as a label value: at most 63 characters, starting and ending alphanumeric. */}}
{{- define "api.versionLabel" -}}
{{- $v := regexReplaceAll "^[^A-Za-z0-9]+" (include "api.imageTag" .) "" | trunc 63 }}
{{- regexReplaceAll "[^A-Za-z0-9]+$" $v "" }}
{{- end }}

{{/* The image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "api.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "api.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Selector labels of the server pods: stable for the life of the release (a Deployment selector is
immutable). The component keeps the helm test pod out of the Service, PDB and NetworkPolicy.
*/}}
{{- define "api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* The recommended app.kubernetes.io labels, but the component. */}}
{{- define "api.commonLabels" -}}
helm.sh/chart: {{ include "api.chart" . }}
app.kubernetes.io/name: {{ include "api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "api.versionLabel" . | quote }}
{{- with .Values.partOf }}
app.kubernetes.io/part-of: {{ . }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels of every object of the server. */}}
{{- define "api.labels" -}}
{{ include "api.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret mounted into SECRETS_DIR, or "" when there is none. Exactly one source may be chosen.
*/}}
{{- define "api.secretName" -}}
{{- $sources := list }}
{{- if .Values.secret.create }}{{ $sources = append $sources "secret.create" }}{{ end }}
{{- if .Values.secret.existingSecret }}{{ $sources = append $sources "secret.existingSecret" }}{{ end }}
{{- if .Values.externalSecret.enabled }}{{ $sources = append $sources "externalSecret.enabled" }}{{ end }}
{{- if gt (len $sources) 1 }}
{{- fail (printf "%s: choose one secret source, not several" (join " and " $sources)) }}
{{- end }}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if or .Values.secret.create .Values.externalSecret.enabled }}
{{- include "api.fullname" . }}
{{- end }}
{{- end }}

{{/* The minimum number of replicas: autoscaling.minReplicas with the HPA on, else replicaCount. */}}
{{- define "api.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}
{{- .Values.autoscaling.minReplicas | int }}
{{- else }}
{{- .Values.replicaCount | int }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: it must outlast the service's drain and shutdown timeout, or the
kubelet kills in-flight requests. 0 computes drain + timeout + 5 s.
*/}}
{{- define "api.terminationGracePeriodSeconds" -}}
{{- $needed := add .Values.shutdown.drainSeconds .Values.shutdown.timeoutSeconds }}
{{- $grace := .Values.terminationGracePeriodSeconds | int }}
{{- if eq $grace 0 }}
{{- add $needed 5 }}
{{- else if le $grace (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than shutdown.drainSeconds + shutdown.timeoutSeconds (%d): raise it, or set it to 0 to compute it" $grace (int $needed)) }}
{{- else }}
{{- $grace }}
{{- end }}
{{- end }}

{{/* The public host, from baseUrl ("" when baseUrl is empty). */}}
{{- define "api.host" -}}
{{- with .Values.baseUrl }}
{{- (urlParse .).hostname }}
{{- end }}
{{- end }}

{{/* The Service's in-cluster URL. */}}
{{- define "api.serviceURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "api.fullname" .) .Release.Namespace (.Values.service.port | int) }}
{{- end }}
