{{/* Chart name, shortened to the 63 characters Kubernetes allows. */}}
{{- define "vlacloud.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "vlacloud.fullname" -}}
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

{{- define "vlacloud.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "vlacloud.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector of one component: call with (dict "root" $ "component" "api"). */}}
{{- define "vlacloud.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vlacloud.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "vlacloud.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.variant }}{{ $tag = printf "%s-%s" $tag .Values.image.variant }}{{ end }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{- define "vlacloud.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vlacloud.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with connection strings and keys: the user's, or the one this chart writes. */}}
{{- define "vlacloud.secretName" -}}
{{- default (include "vlacloud.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Secret data shared by the release Secret and the migration hook's Secret. */}}
{{- define "vlacloud.secretData" -}}
ConnectionStrings__Registry: {{ .Values.postgres.connectionString | b64enc | quote }}
ConnectionStrings__Redis: {{ .Values.redis.connectionString | b64enc | quote }}
{{- with .Values.artifacts.s3.accessKey }}
VlaCloud__Artifacts__AccessKey: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.artifacts.s3.secretKey }}
VlaCloud__Artifacts__SecretKey: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
The pod spec of the api and trainer Deployments: the same image, told its role by VlaCloud__Roles.
Call with (dict "root" $ "component" "api" "values" .Values.api "roles" "api").
*/}}
{{- define "vlacloud.podSpec" -}}
{{- $root := .root }}
{{- $v := .values }}
serviceAccountName: {{ include "vlacloud.serviceAccountName" $root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: {{ .component }}
    image: {{ include "vlacloud.image" $root | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    ports:
      - name: http
        containerPort: 8080
        protocol: TCP
      - name: metrics
        containerPort: {{ $root.Values.observability.metricsPort }}
        protocol: TCP
    envFrom:
      - configMapRef:
          name: {{ include "vlacloud.fullname" $root }}
      - secretRef:
          name: {{ include "vlacloud.secretName" $root }}
    env:
      - name: VlaCloud__Roles
        value: {{ .roles | quote }}
      {{- if eq .component "trainer" }}
      - name: VlaCloud__TrainerWorkers
        value: {{ $v.workers | quote }}
      {{- end }}
      # Every path the host writes is a volume (the root filesystem is read-only).
      - name: VlaCloud__Inference__CheckpointCachePath
        value: /cache/checkpoints
      - name: VlaCloud__FineTuning__WorkPath
        value: /work
      {{- range $name, $value := $v.env }}
      - name: {{ $name }}
        value: {{ $value | quote }}
      {{- end }}
    startupProbe:
      httpGet:
        path: {{ $root.Values.probes.startup.path }}
        port: http
      periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
      failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
    livenessProbe:
      httpGet:
        path: {{ $root.Values.probes.liveness.path }}
        port: http
      periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
      timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
      failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
    readinessProbe:
      httpGet:
        path: {{ $root.Values.probes.readiness.path }}
        port: http
      periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
      timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
      failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
    resources:
      {{- $resources := deepCopy $v.resources }}
      {{- if gt (int $v.gpu) 0 }}
      {{- $limits := default (dict) $resources.limits }}
      {{- $_ := set $limits "nvidia.com/gpu" (int $v.gpu) }}
      {{- $_ := set $resources "limits" $limits }}
      {{- end }}
      {{- toYaml $resources | nindent 6 }}
    volumeMounts:
      # The root filesystem is read-only; .NET and libtorch need a writable temp folder.
      - name: tmp
        mountPath: /tmp
      - name: checkpoint-cache
        mountPath: /cache
      - name: work
        mountPath: /work
      {{- if eq $root.Values.artifacts.store "filesystem" }}
      # The shared store: blobs and upload parts of every pod.
      - name: artifacts
        mountPath: {{ $root.Values.artifacts.filesystem.path }}
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $root.Values.scratch.tmpSizeLimit }}
  - name: checkpoint-cache
    emptyDir:
      sizeLimit: {{ $root.Values.scratch.checkpointCacheSizeLimit }}
  - name: work
    emptyDir:
      sizeLimit: {{ $root.Values.scratch.workSizeLimit }}
  {{- if eq $root.Values.artifacts.store "filesystem" }}
  - name: artifacts
    persistentVolumeClaim:
      claimName: {{ include "vlacloud.artifactsClaim" $root }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range $v.topologySpread.topologyKeys }}
  - maxSkew: {{ $v.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "vlacloud.selectorLabels" (dict "root" $root "component" $.component) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The artifact store's claim: the user's, or the one this chart creates. */}}
{{- define "vlacloud.artifactsClaim" -}}
{{- default (printf "%s-artifacts" (include "vlacloud.fullname" .)) .Values.artifacts.filesystem.existingClaim }}
{{- end }}

{{/* Refuses settings that must not reach a cluster. */}}
{{- define "vlacloud.validate" -}}
{{- if and (not .Values.existingSecret) (regexMatch "(?i)password=change-me(;|$)" .Values.postgres.connectionString) }}
{{- fail "postgres.connectionString still has the default password change-me: set the database's real password (or name a Secret in existingSecret)." }}
{{- end }}
{{- end }}

{{/* Pod annotations: config checksums (a changed setting rolls the pods) and Prometheus discovery. */}}
{{- define "vlacloud.podAnnotations" -}}
{{- $root := .root -}}
checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
{{- if $root.Values.observability.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $root.Values.observability.metricsPort | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Settings that are not secret, as environment variables; shared by the release ConfigMap and the migration hook. */}}
{{- define "vlacloud.configData" -}}
ASPNETCORE_HTTP_PORTS: {{ printf "8080;%v" .Values.observability.metricsPort | quote }}
# In the cluster the migration hook migrates, and tenants are created by an admin, not seeded.
VlaCloud__MigrateOnStart: "false"
VlaCloud__SeedDemo: "false"
VlaCloud__RedisPrefix: {{ .Values.redis.prefix | quote }}
VlaCloud__Artifacts__Store: {{ .Values.artifacts.store | quote }}
{{- if eq .Values.artifacts.store "s3" }}
VlaCloud__Artifacts__Bucket: {{ .Values.artifacts.s3.bucket | quote }}
VlaCloud__Artifacts__Prefix: {{ .Values.artifacts.s3.prefix | quote }}
VlaCloud__Artifacts__Region: {{ .Values.artifacts.s3.region | quote }}
VlaCloud__Artifacts__ForcePathStyle: {{ .Values.artifacts.s3.forcePathStyle | quote }}
{{- with .Values.artifacts.s3.serviceUrl }}
VlaCloud__Artifacts__ServiceUrl: {{ . | quote }}
{{- end }}
{{- else }}
VlaCloud__Artifacts__Path: {{ .Values.artifacts.filesystem.path | quote }}
{{- end }}
VlaCloud__Observability__LogFormat: {{ .Values.observability.logFormat | quote }}
VlaCloud__Observability__MetricsPort: {{ .Values.observability.metricsPort | quote }}
{{- with .Values.observability.otlpEndpoint }}
VlaCloud__Observability__OtlpEndpoint: {{ . | quote }}
{{- end }}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}
