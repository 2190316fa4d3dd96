{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "kwire.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; the release name alone when it already contains the chart's. */}}
{{- define "kwire.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kwire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kwire.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "kwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kwire.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kwire.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The spool directory inside the pod (empty when the spool is off). */}}
{{- define "kwire.spoolDir" -}}
{{- if and .Values.otlp.enabled (ne .Values.otlp.spool.type "none") -}}
/var/lib/kwire/spool
{{- end -}}
{{- end -}}

{{/* OTEL_EXPORTER_OTLP_HEADERS from the headers map: k1=v1,k2=v2 (sorted by key). */}}
{{- define "kwire.otlpHeaders" -}}
{{- $pairs := list -}}
{{- range $k, $v := .Values.otlp.headers -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* OTEL_RESOURCE_ATTRIBUTES: the pod's place in the cluster (downward API), then the extra ones. */}}
{{- define "kwire.resourceAttributes" -}}
{{- $pairs := list "k8s.node.name=$(K8S_NODE_NAME)" "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE)" -}}
{{- range $k, $v := .Values.otlp.resourceAttributes -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
