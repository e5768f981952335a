{{/* One worker Deployment; `.w` holds its name, component values, args and environment. */}}
{{- define "hookline.workerDeployment" -}}
{{- $root := .root -}}
{{- $wv := $root.Values.worker -}}
{{- $w := .w -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $w.name }}
  labels:
    {{- include "hookline.labels" (dict "root" $root "component" "worker" "pool" $w.pool) | nindent 4 }}
spec:
  {{- if not $w.autoscaling.enabled }}
  replicas: {{ $w.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "hookline.selectorLabels" (dict "root" $root "component" "worker" "pool" $w.pool) | nindent 6 }}
  strategy:
    type: RollingUpdate
    # A new worker polls before an old one stops; the old one finishes its steps (graceful
    # shutdown) within terminationGracePeriodSeconds.
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels:
        {{- include "hookline.labels" (dict "root" $root "component" "worker" "pool" $w.pool) | nindent 8 }}
      annotations:
        {{- include "hookline.checksums" $root | nindent 8 }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "hookline.podSpecCommon" $root | nindent 6 }}
      {{- with $w.serviceAccountName }}
      serviceAccountName: {{ . }}
      automountServiceAccountToken: true
      {{- end }}
      shareProcessNamespace: {{ $wv.shareProcessNamespace }}
      terminationGracePeriodSeconds: {{ $wv.terminationGracePeriodSeconds }}
      containers:
        - name: worker
          image: {{ include "hookline.image" (dict "root" $root "tag" $wv.imageTag) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: {{ toJson $w.args }}
          env:
            {{- include "hookline.commonEnv" $root | nindent 12 }}
            {{- include "hookline.listenEnv" (dict "section" "worker" "port" $wv.port) | nindent 12 }}
            {{- with $w.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $wv.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with include "hookline.secretEnvFrom" $root }}{{ . | nindent 10 }}{{ end }}
          ports:
            - name: http
              containerPort: {{ $wv.port }}
              protocol: TCP
          {{- include "hookline.probes" (dict "values" $wv) | nindent 10 }}
          resources:
            {{- toYaml $w.resources | nindent 12 }}
          securityContext:
            {{- toYaml (merge (deepCopy (default dict $w.securityContext)) $root.Values.securityContext) | nindent 12 }}
          volumeMounts:
            {{- include "hookline.volumeMounts" (dict "root" $root "secrets" true) | nindent 12 }}
      volumes:
        {{- include "hookline.volumes" (dict "root" $root "secrets" true "configMap" (include "hookline.fullname" $root)) | nindent 8 }}
      {{- include "hookline.scheduling" (dict "nodeSelector" (default $root.Values.nodeSelector $w.nodeSelector) "tolerations" (default $root.Values.tolerations $w.tolerations) "affinity" $root.Values.affinity "topologySpreadConstraints" $root.Values.topologySpreadConstraints) | nindent 6 }}
{{- end -}}

{{/* The autoscaler of one worker Deployment: a KEDA ScaledObject on its task queues' backlog,
or an HPA on the backlog metric the gateway exports (on CPU for the interpreter, whose workflow
task queue has no exported metric). */}}
{{- define "hookline.workerAutoscaler" -}}
{{- $root := .root -}}
{{- $w := .w -}}
{{- $a := $w.autoscaling -}}
{{- if $root.Values.keda.enabled }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $w.name }}
  labels:
    {{- include "hookline.labels" (dict "root" $root "component" "worker" "pool" $w.pool) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $w.name }}
  minReplicaCount: {{ $a.minReplicas }}
  maxReplicaCount: {{ $a.maxReplicas }}
  pollingInterval: {{ $root.Values.keda.pollingInterval }}
  cooldownPeriod: {{ $root.Values.keda.cooldownPeriod }}
  triggers:
    {{- range $w.queues }}
    - type: temporal
      metadata:
        endpoint: {{ include "hookline.temporalAddress" $root | quote }}
        namespace: {{ include "hookline.temporalNamespace" $root | quote }}
        taskQueue: {{ . | quote }}
        queueTypes: {{ $w.queueType | quote }}
        targetQueueSize: {{ $a.targetBacklog | quote }}
        activationTargetQueueSize: "0"
      {{- with $root.Values.keda.authenticationRef }}
      authenticationRef:
        name: {{ . }}
      {{- end }}
    {{- end }}
{{- else }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $w.name }}
  labels:
    {{- include "hookline.labels" (dict "root" $root "component" "worker" "pool" $w.pool) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $w.name }}
  minReplicas: {{ max 1 $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    {{- if eq $w.queueType "workflow" }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- else }}
    {{- range $w.pools }}
    - type: External
      external:
        metric:
          name: {{ $root.Values.backlogMetric.name }}
          selector:
            matchLabels:
              pool: {{ . | quote }}
        target:
          type: AverageValue
          averageValue: {{ $a.targetBacklog | quote }}
    {{- end }}
    {{- end }}
  behavior:
    scaleDown:
      # Steps are minutes long; let a backlog that just cleared stay cleared before shrinking.
      stabilizationWindowSeconds: 300
{{- end }}
{{- end -}}
