{{/* Chart name, overridable, cut to 63 characters (DNS label limit). */}}
{{- define "socketfleet-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. Release names that already contain the chart name are not
repeated, so `helm install socketfleet-operator` gives `socketfleet-operator`.
*/}}
{{- define "socketfleet-operator.fullname" -}}
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

{{- define "socketfleet-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "socketfleet-operator.labels" -}}
helm.sh/chart: {{ include "socketfleet-operator.chart" . }}
{{ include "socketfleet-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: socketfleet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment selector is immutable). */}}
{{- define "socketfleet-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "socketfleet-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "socketfleet-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "socketfleet-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "socketfleet-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Lease the replicas compete for; the operator's --lease-name. */}}
{{- define "socketfleet-operator.leaseName" -}}
{{- default (include "socketfleet-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Watched namespaces, de-duplicated. Empty means all namespaces (cluster-wide RBAC).
*/}}
{{- define "socketfleet-operator.watchNamespaces" -}}
{{- uniq .Values.watchNamespaces | toJson }}
{{- end }}

{{/* The Secret holding the operator key (see operator-key.yaml). */}}
{{- define "socketfleet-operator.operatorKeySecret" -}}
{{- default (printf "%s-key" (include "socketfleet-operator.fullname" .)) .Values.operatorKey.existingSecret }}
{{- end }}
