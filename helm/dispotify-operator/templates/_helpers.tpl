{{/* Names and labels. */}}
{{- define "dispotify-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dispotify-operator.fullname" -}}
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

{{- define "dispotify-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dispotify-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The pods' selector: deploy/kubernetes/operator selects by the name alone; a release adds its own. */}}
{{- define "dispotify-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dispotify-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dispotify-operator.labels" -}}
{{ include "dispotify-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The operator's HTTP port: /healthz, /readyz and /metrics (its --listen). */}}
{{- define "dispotify-operator.port" -}}
8081
{{- end }}

{{/*
The rules the operator needs on DispotifyClusters and the objects it owns, in the namespaces it
watches: exactly deploy/kubernetes/operator/rbac.yaml's (e2e/k8s/helm-check.sh compares them).
Server-side apply is a PATCH, and a PATCH that creates the object also needs "create".
*/}}
{{- define "dispotify-operator.namespacedRules" -}}
# The custom resources: watched, their status written, the recovery annotations removed.
- apiGroups: [dispotify.io]
  resources: [dispotifyclusters]
  verbs: [get, list, watch, patch]
- apiGroups: [dispotify.io]
  resources: [dispotifyclusters/status]
  verbs: [patch]
# Owned objects, applied server-side.
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [create, patch]
# Secrets: the admin token (created once, then read to talk to the nodes), the cluster CA
# (created once, then read to issue) and the pods' certificates (applied, renewed).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [create, patch]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [create, patch]
# Pods: watched, and deleted one at a time for a rolling upgrade or a quorum recovery.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete]
# Volumes grow with spec.storage.size.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Cluster-scoped: whether the ServiceMonitor CRD is installed (a Role cannot grant it). */}}
{{- define "dispotify-operator.crdRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [servicemonitors.monitoring.coreos.com]
  verbs: [get]
{{- end }}
