{{/* Names, labels and the values several templates share. */}}

{{- define "switchboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.operator" -}}{{ include "switchboard.fullname" . }}-operator{{- end -}}
{{- define "switchboard.gateway" -}}{{ include "switchboard.fullname" . }}-gateway{{- end -}}
{{- define "switchboard.streamService" -}}{{ include "switchboard.fullname" . }}-stream{{- end -}}

{{- define "switchboard.tokenSecret" -}}
{{- .Values.stream.token.existingSecret | default (printf "%s-stream-token" (include "switchboard.fullname" .)) -}}
{{- end -}}

{{- define "switchboard.tlsSecret" -}}
{{- .Values.stream.tls.existingSecret | default (printf "%s-stream-tls" (include "switchboard.fullname" .)) -}}
{{- end -}}

{{/* The URL gateways follow: the stream Service, which only the leading operator backs. */}}
{{- define "switchboard.streamURL" -}}
{{- printf "%s://%s.%s.svc:%v" (ternary "http" "https" .Values.stream.insecure) (include "switchboard.streamService" .) .Release.Namespace .Values.operator.ports.stream -}}
{{- end -}}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component ("operator" or "gateway"): pass (list $ "component"). */}}
{{- define "switchboard.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ $.Chart.Name }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "switchboard.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .chart.AppVersion) -}}
{{- end -}}

{{/* Namespaces the operator watches ("" alone: every namespace). */}}
{{- define "switchboard.watchesAll" -}}
{{- if not .Values.operator.watchNamespaces }}true{{ end -}}
{{- end -}}

{{/* Non-root, read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "switchboard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "switchboard.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "switchboard.podIdentityEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}
