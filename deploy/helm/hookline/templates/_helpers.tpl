{{/* Names, labels, the settings the chart reads from `config`, and the pieces every pod shares. */}}

{{- define "hookline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hookline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: fullname-suffix, within the 63 characters of a label value. */}}
{{- define "hookline.componentName" -}}
{{- printf "%s-%s" (include "hookline.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hookline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hookline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .pool }}
hookline.dev/pool: {{ . }}
{{- end }}
{{- end -}}

{{- define "hookline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: hookline
{{ include "hookline.selectorLabels" . }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image of a component: its own `imageTag` (a phased upgrade, docs/deploy.md), else image.tag. */}}
{{- define "hookline.image" -}}
{{- $root := .root | default . -}}
{{- $tag := default (default $root.Chart.AppVersion $root.Values.image.tag) .tag -}}
{{- printf "%s:%s" $root.Values.image.repository $tag -}}
{{- end -}}

{{- define "hookline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hookline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Settings the chart needs from `config`, with the code's defaults (hookline/settings.py). */}}
{{- define "hookline.temporalAddress" -}}{{ dig "temporal" "address" "127.0.0.1:7233" .Values.config }}{{- end -}}
{{- define "hookline.temporalNamespace" -}}{{ dig "temporal" "namespace" "default" .Values.config }}{{- end -}}
{{- define "hookline.taskQueue" -}}{{ dig "temporal" "task_queue" "hookline" .Values.config }}{{- end -}}
{{- define "hookline.runnerQueuePrefix" -}}{{ dig "temporal" "runner_queue_prefix" "hookline.runner." .Values.config }}{{- end -}}
{{- define "hookline.eventsPartitions" -}}{{ dig "kafka" "events_partitions" 6 .Values.config | int }}{{- end -}}

{{/* Where the agents file is in the pods: the chart's own, one in the image, or none. */}}
{{- define "hookline.agentsPath" -}}
{{- if .Values.agents -}}/etc/hookline/agents.yaml{{- else -}}{{ .Values.agentsFile }}{{- end -}}
{{- end -}}

{{/* The data of the settings ConfigMap: hookline.yaml, and agents.yaml when agents are given. */}}
{{- define "hookline.configData" -}}
hookline.yaml: |
{{ toYaml .Values.config | indent 2 }}
{{- with .Values.agents }}
agents.yaml: |
{{ toYaml (dict "agents" .) | indent 2 }}
{{- end }}
{{- end -}}

{{- define "hookline.envSecretName" -}}
{{- if .Values.secrets.existingEnvSecret -}}{{ .Values.secrets.existingEnvSecret }}{{- else if .Values.secrets.env -}}{{ include "hookline.fullname" . }}-env{{- end -}}
{{- end -}}

{{- define "hookline.filesSecretName" -}}
{{- if .Values.secrets.existingFilesSecret -}}{{ .Values.secrets.existingFilesSecret }}{{- else if .Values.secrets.files -}}{{ include "hookline.fullname" . }}-files{{- end -}}
{{- end -}}

{{/* Environment every component gets: the settings file, the agents file, JSON logs. */}}
{{- define "hookline.commonEnv" -}}
- name: HOOKLINE_CONFIG
  value: /etc/hookline/hookline.yaml
{{- with include "hookline.agentsPath" . }}
- name: HOOKLINE_AGENTS_FILE
  value: {{ . | quote }}
{{- end }}
- name: HOOKLINE_LOG__FORMAT
  value: json
{{- end -}}

{{/* A component's HTTP address (health, metrics; the gateway's traffic too). */}}
{{- define "hookline.listenEnv" -}}
- name: HOOKLINE_{{ .section | upper }}__HOST
  value: 0.0.0.0
- name: HOOKLINE_{{ .section | upper }}__PORT
  value: {{ .port | quote }}
{{- end -}}

{{/* envFrom of the env Secret, for the components that resolve secrets (gateway, workers). */}}
{{- define "hookline.secretEnvFrom" -}}
{{- with include "hookline.envSecretName" . -}}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end -}}
{{- end -}}

{{- define "hookline.volumeMounts" -}}
- name: config
  mountPath: /etc/hookline/hookline.yaml
  subPath: hookline.yaml
  readOnly: true
{{- if .root.Values.agents }}
- name: config
  mountPath: /etc/hookline/agents.yaml
  subPath: agents.yaml
  readOnly: true
{{- end }}
{{- if and .secrets (include "hookline.filesSecretName" .root) }}
- name: secret-files
  mountPath: /etc/hookline/secrets
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "hookline.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
{{- if and .secrets (include "hookline.filesSecretName" .root) }}
- name: secret-files
  secret:
    secretName: {{ include "hookline.filesSecretName" .root }}
    defaultMode: 0440
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* Pod-level settings every Deployment shares. */}}
{{- define "hookline.podSpecCommon" -}}
serviceAccountName: {{ include "hookline.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
securityContext:
{{ toYaml .Values.podSecurityContext | indent 2 }}
{{- end -}}

{{- define "hookline.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{ toYaml . }}
{{- end }}
{{- with .affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Liveness on /healthz, readiness on /readyz, and a startup probe so a slow start (Kafka or
Temporal still coming) is not taken for a hang (docs/operations.md#health-endpoints). */}}
{{- define "hookline.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
{{ toYaml .values.startupProbe | indent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
{{ toYaml .values.livenessProbe | indent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
{{ toYaml .values.readinessProbe | indent 2 }}
{{- end -}}

{{/* A hash of what a pod reads at start-up: changing the settings or secrets rolls the pods. */}}
{{- define "hookline.checksums" -}}
checksum/config: {{ include "hookline.configData" . | sha256sum }}
checksum/secrets: {{ toJson (list .Values.secrets.env .Values.secrets.files) | sha256sum }}
{{- end -}}

{{/* Checks of values no schema can express; each failure says what to change. */}}
{{- define "hookline.validate" -}}
{{- $partitions := include "hookline.eventsPartitions" . | int -}}
{{- if gt (int .Values.triggers.replicas) $partitions -}}
{{- fail (printf "triggers.replicas (%d) is more than the events topic's partitions (config.kafka.events_partitions: %d): a consumer group gives each partition to one member, so the extra replicas would get no events. Lower triggers.replicas or raise events_partitions (for an existing topic, add partitions with kafka-topics --alter first)." (int .Values.triggers.replicas) $partitions) -}}
{{- end -}}
{{- if and .Values.secrets.existingEnvSecret .Values.secrets.env -}}
{{- fail "secrets.env and secrets.existingEnvSecret are both set: put the variables in your Secret, or let the chart render secrets.env" -}}
{{- end -}}
{{- if and .Values.secrets.existingFilesSecret .Values.secrets.files -}}
{{- fail "secrets.files and secrets.existingFilesSecret are both set: put the files in your Secret, or let the chart render secrets.files" -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.gateway.resources)) -}}
{{- fail "gateway.autoscaling scales on CPU utilisation, which needs gateway.resources.requests.cpu" -}}
{{- end -}}
{{- if and (dig "temporal" "local_pools" list .Values.config) (not .Values.worker.interpreter.runners) -}}
{{- fail "config.temporal.local_pools runs those pools' steps in the interpreter's worker: list their runner kinds in worker.interpreter.runners" -}}
{{- end -}}
{{- $kinds := dict -}}
{{- $queues := dict -}}
{{- range .Values.worker.pools -}}
{{- $pool := . -}}
{{- if eq .name "interpreter" -}}
{{- fail "worker.pools: the name \"interpreter\" is the interpreter's Deployment's (worker.interpreter); name the pool otherwise" -}}
{{- end -}}
{{- range (default (list .name) .runners) -}}
{{- if hasKey $kinds . -}}
{{- fail (printf "runner kind %q is served by worker pools %q and %q: a worker polls every pool whose agents use its kinds, so both Deployments would poll the same task queues. Serve each kind in one entry of worker.pools (list the other pools of its agents in extraPools)." . (get $kinds .) $pool.name) -}}
{{- end -}}
{{- $_ := set $kinds . $pool.name -}}
{{- end -}}
{{- range (concat (list .name) (default list .extraPools)) -}}
{{- if hasKey $queues . -}}
{{- fail (printf "pool %q is listed by worker pools %q and %q" . (get $queues .) $pool.name) -}}
{{- end -}}
{{- $_ := set $queues . $pool.name -}}
{{- end -}}
{{- end -}}
{{- range $agent, $spec := .Values.agents -}}
{{- $runner := default "shell" $spec.runner -}}
{{- $queue := default $runner $spec.pool -}}
{{- if not (hasKey $kinds $runner) -}}
{{- fail (printf "agent %q runs on runner kind %q, which no entry of worker.pools serves: its steps would wait forever" $agent $runner) -}}
{{- end -}}
{{- if ne (get $queues $queue | default "") (get $kinds $runner) -}}
{{- fail (printf "agent %q runs on pool %q (runner %q), which worker pool %q polls but does not list: add %q to its extraPools so its backlog scales it" $agent $queue $runner (get $kinds $runner) $queue) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A worker pool's values with the defaults of an entry that gives only some of them. */}}
{{- define "hookline.pool" -}}
{{- $defaults := dict "runners" (list .name) "extraPools" list "replicas" 1 "resources" dict "serviceAccountName" "" "nodeSelector" dict "tolerations" list "securityContext" dict "autoscaling" (dict "enabled" false "minReplicas" 1 "maxReplicas" 10 "targetBacklog" 10) -}}
{{- toJson (mergeOverwrite $defaults (deepCopy .)) -}}
{{- end -}}
