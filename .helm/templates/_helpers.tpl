{{/*
Names, labels and the few computed values that several templates share.
*/}}

{{/*
The service's name: nameOverride, else the release name, which deploy sets to the service's
folder name. It is the app.kubernetes.io/name label and part of the selector, so it never
changes for a running release.
*/}}
{{- define "service.name" -}}
{{- default .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: fullnameOverride, else the release name (the service's
folder name), truncated to 63 characters (DNS label limit).
*/}}
{{- define "service.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. "latest" is refused. */}}
{{- define "service.imageTag" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag resolves to \"latest\": pin a version (set image.tag, or the chart's appVersion)" }}
{{- end }}
{{- $tag }}
{{- end }}

{{/* The image tag as a label value: at most 63 characters, starting and ending alphanumeric. */}}
{{- define "service.versionLabel" -}}
{{- $v := regexReplaceAll "^[^A-Za-z0-9]+" (include "service.imageTag" .) "" | trunc 63 }}
{{- regexReplaceAll "[^A-Za-z0-9]+$" $v "" }}
{{- end }}

{{/* The image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "service.image" -}}
{{- $repository := default .Release.Name .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (include "service.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Selector labels of the server pods: stable for the life of the release (a Deployment selector is
immutable). The component keeps the helm test pod out of the Service, PDB and NetworkPolicy.
*/}}
{{- define "service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
The recommended app.kubernetes.io labels, but the component, and the environment and service
that deploy checks before it adopts a release or destroys anything.
*/}}
{{- define "service.commonLabels" -}}
helm.sh/chart: {{ include "service.chart" . }}
app.kubernetes.io/name: {{ include "service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "service.versionLabel" . | quote }}
{{- with .Values.partOf }}
app.kubernetes.io/part-of: {{ . }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
dtap.dev/service: {{ .Release.Name }}
{{- with .Values.environment }}
dtap.dev/environment: {{ . }}
{{- end }}
{{- end }}

{{/* The labels of every object of the server. */}}
{{- define "service.labels" -}}
{{ include "service.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret mounted into SECRETS_DIR, or "" when there is none: secret.existingSecret (the
versioned Secret deploy writes, or one of yours), or the one an ExternalSecret fills. Exactly one
source may be chosen.
*/}}
{{- define "service.secretName" -}}
{{- if and .Values.secret.existingSecret .Values.externalSecret.enabled }}
{{- fail "secret.existingSecret and externalSecret.enabled: choose one secret source, not both" }}
{{- end }}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.externalSecret.enabled }}
{{- include "service.fullname" . }}
{{- end }}
{{- end }}

{{/* The minimum number of replicas: autoscaling.minReplicas with the HPA on, else replicaCount. */}}
{{- define "service.minReplicas" -}}
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
{{- define "service.terminationGracePeriodSeconds" -}}
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

{{/*
The public URL: baseUrl, else <release>.<domain> over https when the Ingress serves TLS and
http otherwise, else "" (no public host).
*/}}
{{- define "service.baseUrl" -}}
{{- if .Values.baseUrl }}
{{- .Values.baseUrl }}
{{- else if .Values.domain }}
{{- printf "%s://%s.%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Release.Name .Values.domain }}
{{- end }}
{{- end }}

{{/* The public host, from the public URL ("" when there is none). */}}
{{- define "service.host" -}}
{{- with include "service.baseUrl" . }}
{{- (urlParse .).hostname }}
{{- end }}
{{- end }}

{{/* The Service's in-cluster URL. */}}
{{- define "service.serviceURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "service.fullname" .) .Release.Namespace (.Values.service.port | int) }}
{{- end }}

{{/*
SERVICE_URLS: name=http://<name>.<namespace>.svc.cluster.local:<port> for each of
discovery.services (deploy fills them with the environment's other services).
*/}}
{{- define "service.discoveryURLs" -}}
{{- $urls := list }}
{{- range .Values.discovery.services }}
{{- $urls = append $urls (printf "%s=http://%s.%s.svc.cluster.local:%d" .name .name $.Release.Namespace (.port | int)) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{/*
The Secret of the public host's certificate: ingress.tls.secretName, else <fullname>-tls.
*/}}
{{- define "service.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "service.fullname" .)) .Values.ingress.tls.secretName }}
{{- end }}
