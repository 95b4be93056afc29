{{/* Names, labels and the one validateValues. Every helper is prefixed with "oag." */}}

{{- define "oag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "oag.fullname" -}}
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

{{- define "oag.ollama.fullname" -}}
{{- printf "%s-ollama" (include "oag.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{/* The headless Service the gateway discovers the Ollama pods through (63 characters at most). */}}
{{- define "oag.ollama.headlessName" -}}
{{- printf "%s-ollama-pods" (include "oag.fullname" . | trunc 51 | trimSuffix "-") -}}
{{- end -}}

{{- define "oag.redis.fullname" -}}
{{- printf "%s-redis" (include "oag.fullname" . | trunc 57 | trimSuffix "-") -}}
{{- end -}}

{{- define "oag.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "oag.labels" -}}
helm.sh/chart: {{ include "oag.chart" .ctx }}
{{ include "oag.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: {{ include "oag.name" .ctx }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "oag.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oag.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Pod-spec fields every pod of the chart shares: service account, token, pull secrets. */}}
{{- define "oag.podCommon" -}}
serviceAccountName: {{ include "oag.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
enableServiceLinks: false
{{- include "oag.imagePullSecrets" . }}
{{- end -}}

{{- define "oag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "oag.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference; call with (dict "ctx" $ "image" <image values> "tag" <default tag>).
`global.imageRegistry` replaces the repository's registry: its first path segment when that
names a host (has a dot or a port, or is localhost, as Docker reads it), else it is prefixed.
*/}}
{{- define "oag.image" -}}
{{- $repo := .image.repository -}}
{{- with .ctx.Values.global.imageRegistry -}}
{{- $parts := splitList "/" $repo -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- $repo = join "/" (rest $parts) -}}
{{- end -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (toString (.image.tag | default .tag)) -}}
{{- end -}}
{{- end -}}

{{- define "oag.gateway.image" -}}
{{- include "oag.image" (dict "ctx" . "image" .Values.gateway.image "tag" .Chart.AppVersion) -}}
{{- end -}}

{{- define "oag.ollama.image" -}}
{{- include "oag.image" (dict "ctx" . "image" .Values.ollama.image) -}}
{{- end -}}

{{/* The pod's imagePullSecrets block: the release's, then the global ones. */}}
{{- define "oag.imagePullSecrets" -}}
{{- $secrets := concat (.Values.imagePullSecrets | default list) (.Values.global.imagePullSecrets | default list) -}}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An env value as a string: YAML numbers arrive as float64 and would print as 3.6e+06. */}}
{{- define "oag.envValue" -}}
{{- if kindIs "float64" . -}}{{- int64 . -}}{{- else -}}{{- toString . -}}{{- end -}}
{{- end -}}

{{/* A config value, or the service's own default from the copied config schema. */}}
{{- define "oag.configInt" -}}
{{- $schema := .ctx.Files.Get "files/config.schema.json" | fromJson -}}
{{- $default := (get (get $schema.properties .key) "default") -}}
{{- int64 (hasKey .ctx.Values.gateway.config .key | ternary (get .ctx.Values.gateway.config .key) $default) -}}
{{- end -}}

{{/* Seconds from SIGTERM to SIGKILL: computed from the service's shutdown settings. */}}
{{- define "oag.gateway.gracePeriod" -}}
{{- $drainMs := add (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_DELAY_MS")) (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_TIMEOUT_MS")) -}}
{{- if kindIs "invalid" .Values.gateway.terminationGracePeriodSeconds -}}
{{- add (div (add $drainMs 999) 1000) .Values.gateway.terminationGraceExtraSeconds -}}
{{- else -}}
{{- int64 .Values.gateway.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* failureThreshold that makes period × threshold cover the budget. */}}
{{- define "oag.thresholdFor" -}}
{{- div (add .budgetSeconds .periodSeconds -1) .periodSeconds | max 1 -}}
{{- end -}}

{{- define "oag.ollama.host" -}}
{{- if .Values.ollama.enabled -}}
{{- printf "http://%s:%d" (include "oag.ollama.fullname" .) (int .Values.ollama.servicePort) -}}
{{- else -}}
{{- .Values.ollama.externalHost -}}
{{- end -}}
{{- end -}}

{{/* Whether more than one Ollama pod can run, so the gateway discovers them (OLLAMA_DISCOVERY). */}}
{{- define "oag.ollama.discovered" -}}
{{- $o := .Values.ollama -}}
{{- if and $o.enabled (or (gt (int $o.replicaCount) 1) $o.keda.enabled) -}}true{{- end -}}
{{- end -}}

{{/* The headless Service's fully qualified name: resolved as is, with no search domains. */}}
{{- define "oag.ollama.discoveryName" -}}
{{- printf "%s.%s.svc.%s" (include "oag.ollama.headlessName" .) .Release.Namespace .Values.ollama.clusterDomain -}}
{{- end -}}

{{/* Whether the ScaledObject is rendered: asked for, and the cluster serves KEDA's API. */}}
{{- define "oag.ollama.kedaRendered" -}}
{{- $apis := .Capabilities.APIVersions -}}
{{- if and .Values.ollama.enabled .Values.ollama.keda.enabled (or ($apis.Has "keda.sh/v1alpha1") ($apis.Has "keda.sh/v1alpha1/ScaledObject")) -}}true{{- end -}}
{{- end -}}

{{/*
Whether the cluster serves a kind of the Prometheus operator's monitoring.coreos.com/v1 API
(`include "oag.monitoringApi" (list . "ServiceMonitor")`). A cluster lists each installed CRD's
kind; an offline or GitOps render (`helm template --api-versions`) may name the group/version
alone, which then stands for every kind, but only when no kind of it is listed: a cluster with
only the ServiceMonitor CRD lists the group/version too.
*/}}
{{- define "oag.monitoringApi" -}}
{{- $apis := (index . 0).Capabilities.APIVersions -}}
{{- $kinds := false -}}
{{- range $apis -}}{{- if hasPrefix "monitoring.coreos.com/v1/" . -}}{{- $kinds = true -}}{{- end -}}{{- end -}}
{{- if or ($apis.Has (printf "monitoring.coreos.com/v1/%s" (index . 1))) (and ($apis.Has "monitoring.coreos.com/v1") (not $kinds)) -}}true{{- end -}}
{{- end -}}

{{/* Whether the ServiceMonitor is rendered: asked for, and the cluster serves its API. */}}
{{- define "oag.serviceMonitorRendered" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (include "oag.monitoringApi" (list . "ServiceMonitor")) -}}true{{- end -}}
{{- end -}}

{{/*
Redis: the bundled Valkey when `redis.enabled` says so, or (left empty) whenever more than one
gateway replica can run and no external Redis is named. "bundled", "external" (redis.url),
"secretEnv" (REDIS_URL from gateway.secretEnv) or "" (none).
*/}}
{{- define "oag.redis.mode" -}}
{{- $r := .Values.redis -}}
{{- $secretNames := list -}}
{{- range .Values.gateway.secretEnv -}}{{- $secretNames = append $secretNames .name -}}{{- end -}}
{{- $several := or .Values.autoscaling.enabled (gt (int .Values.gateway.replicaCount) 1) -}}
{{- if kindIs "bool" $r.enabled -}}
{{- if $r.enabled -}}bundled{{- else if $r.url -}}external{{- else if has "REDIS_URL" $secretNames -}}secretEnv{{- end -}}
{{- else if $r.url -}}external
{{- else if has "REDIS_URL" $secretNames -}}secretEnv
{{- else if $several -}}bundled
{{- end -}}
{{- end -}}

{{- define "oag.redis.secretName" -}}
{{- default (include "oag.redis.fullname" .) .Values.redis.existingSecret -}}
{{- end -}}

{{- define "oag.redis.secretKey" -}}
{{- if .Values.redis.existingSecret -}}{{ .Values.redis.existingSecretPasswordKey }}{{- else -}}redis-password{{- end -}}
{{- end -}}

{{/* The bundled Valkey's configuration file; its password comes from the Secret at start. */}}
{{- define "oag.redis.conf" -}}
{{- $r := .Values.redis -}}
bind * -::*
port 6379
protected-mode yes
dir /data
maxmemory {{ $r.maxmemory }}
# Runs and idempotency keys must never vanish silently: past maxmemory, writes fail.
maxmemory-policy noeviction
{{- if $r.persistence.enabled }}
# The append-only file, fsynced every second; no RDB snapshots beside it.
appendonly yes
appendfsync everysec
save ""
{{- else }}
# No persistence: nothing is written to /data.
appendonly no
save ""
{{- end }}
{{- end -}}

{{/* What the pods that read the Redis password see of it: the generated one, or the Secret's name and key. */}}
{{- define "oag.redis.authChecksum" -}}
{{- if .Values.redis.existingSecret -}}
{{- printf "%s/%s" .Values.redis.existingSecret .Values.redis.existingSecretPasswordKey | sha256sum -}}
{{- else -}}
{{- include "oag.redis.password" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* The gateway reads the Redis password from this file (REDIS_PASSWORD_FILE). */}}
{{- define "oag.redis.passwordFile" -}}/etc/ollama-agent-gateway/redis/password{{- end -}}

{{/* Whether the gateway gets a password file: the chart's Secret, or an existing one. */}}
{{- define "oag.redis.hasPassword" -}}
{{- $mode := include "oag.redis.mode" . -}}
{{- if or (eq $mode "bundled") (and $mode .Values.redis.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/*
The bundled server's generated password, kept across upgrades by reading the live Secret
(as the API keys are) and cached for this render, so the Secret and the pods' checksum agree.
*/}}
{{- define "oag.redis.password" -}}
{{- $r := .Values.redis -}}
{{- if not (hasKey $r "_password") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "oag.redis.fullname" .) -}}
{{- $password := "" -}}
{{- if and $existing (index ($existing.data | default dict) "redis-password") -}}
{{- $password = index $existing.data "redis-password" | b64dec -}}
{{- else -}}
{{- $password = randAlphaNum 40 -}}
{{- end -}}
{{- $_ := set $r "_password" $password -}}
{{- end -}}
{{- $r._password -}}
{{- end -}}

{{- define "oag.auth.secretName" -}}
{{- default (printf "%s-api-keys" (include "oag.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "oag.auth.secretKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}api-keys{{- end -}}
{{- end -}}

{{/* Seconds Ollama keeps serving after it is told to stop: the gateway's drain timeout by default. */}}
{{- define "oag.ollama.drainSeconds" -}}
{{- if kindIs "invalid" .Values.ollama.drainSeconds -}}
{{- div (add (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_TIMEOUT_MS")) 999) 1000 -}}
{{- else -}}
{{- int64 .Values.ollama.drainSeconds -}}
{{- end -}}
{{- end -}}

{{/* Key of the GPU nodes' taint: MIG resources (nvidia.com/mig-*) sit on nodes tainted nvidia.com/gpu. */}}
{{- define "oag.ollama.taintKey" -}}
{{- $gpu := .Values.ollama.gpu -}}
{{- if $gpu.taintKey -}}
{{- $gpu.taintKey -}}
{{- else if hasPrefix "nvidia.com/" $gpu.resourceName -}}
nvidia.com/gpu
{{- else -}}
{{- $gpu.resourceName -}}
{{- end -}}
{{- end -}}

{{/*
Where the Ollama image writes (facts of the pinned image, see test/deploy/support/ollama-image.ts):
`ollama serve` creates $HOME/.ollama/id_ed25519 and keeps models in $OLLAMA_MODELS (default
$HOME/.ollama/models). The image sets no HOME and no USER, so both are pointed at the volume.
*/}}
{{- define "oag.ollama.dataPath" -}}/ollama{{- end -}}

{{/* Environment every container running the Ollama binary gets, before its own variables. */}}
{{- define "oag.ollama.baseEnv" -}}
- name: HOME
  value: {{ include "oag.ollama.dataPath" . }}
- name: OLLAMA_MODELS
  value: {{ include "oag.ollama.dataPath" . }}/models
{{- end -}}

{{/*
The API keys file the chart's Secret holds. A generated key needs the live Secret to stay the
same across renders, so it is read with `lookup` and cached for this render (the Deployment's
checksum and the Secret must see one key). Where the cluster cannot be read (helm template,
Argo CD, --dry-run without a cluster) validateValues refuses to generate one.
*/}}
{{- define "oag.auth.content" -}}
{{- $auth := .Values.auth -}}
{{- if not (hasKey $auth "_content") -}}
{{- $content := "" -}}
{{- if $auth.apiKeys -}}
{{- range $auth.apiKeys -}}
{{- $content = printf "%s%s:%s\n" $content .key .role -}}
{{- end -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "oag.auth.secretName" .) -}}
{{- if and $existing (index ($existing.data | default dict) "api-keys") -}}
{{- $content = index $existing.data "api-keys" | b64dec -}}
{{- else -}}
{{- $content = printf "%s:admin\n" (randAlphaNum 40) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $auth "_content" $content -}}
{{- end -}}
{{- $auth._content -}}
{{- end -}}

{{/* Whether this render reads a live cluster: a list call answers with a kind there, nothing under helm template. */}}
{{- define "oag.clusterReadable" -}}
{{- if hasKey (lookup "v1" "Secret" .Release.Namespace "") "kind" -}}true{{- end -}}
{{- end -}}

{{/* The gateway's public path prefixes: everything a client calls; /metrics is not one. */}}
{{- define "oag.publicPaths" -}}
/agents /ollama /health /v1 /api
{{- end -}}

{{/* TRUST_PROXY: one proxy hop when an Ingress or HTTPRoute fronts the gateway. */}}
{{- define "oag.behindProxy" -}}
{{- if or .Values.ingress.enabled .Values.httpRoute.enabled -}}true{{- end -}}
{{- end -}}

{{/* Variables the chart sets itself; users may not set them in gateway.config. */}}
{{- define "oag.chartManagedEnv" -}}
PORT OLLAMA_HOST OLLAMA_HOSTS OLLAMA_DISCOVERY OLLAMA_DISCOVERY_INTERVAL_MS API_KEYS_FILE AGENTS_FILE AUTH_DISABLED REDIS_PASSWORD_FILE
{{- end -}}

{{/*
What the service's loadConfig says about one value, from the variable's declaration in the copied
config schema (.decl): the keywords that schema uses on variables (type, enum, minimum, maximum,
minLength, maxLength, pattern). The service trims a value and takes an empty one as unset, and
reads integers and booleans from their text. Empty when the value passes.
*/}}
{{- define "oag.configValueProblem" -}}
{{- $d := .decl -}}
{{- $s := trim (include "oag.envValue" .value) -}}
{{- if $s -}}
{{- if eq $d.type "integer" -}}
{{- if not (regexMatch "^-?[0-9]+$" $s) -}}must be an integer (got {{ quote $s }})
{{- else if and (hasKey $d "minimum") (lt (int64 $s) (int64 $d.minimum)) -}}must be >= {{ int64 $d.minimum }} (got {{ $s }})
{{- else if and (hasKey $d "maximum") (gt (int64 $s) (int64 $d.maximum)) -}}must be <= {{ int64 $d.maximum }} (got {{ $s }})
{{- end -}}
{{- else if eq $d.type "boolean" -}}
{{- if not (regexMatch "^(?i:true|false)$" $s) -}}must be true or false (got {{ quote $s }})
{{- end -}}
{{- else if and $d.enum (not (has $s $d.enum)) -}}must be one of: {{ join ", " $d.enum }} (got {{ quote $s }})
{{- else if and (hasKey $d "minLength") (lt (len $s) (int $d.minLength)) -}}must have at least {{ int $d.minLength }} characters (got {{ quote $s }})
{{- else if and (hasKey $d "maxLength") (gt (len $s) (int $d.maxLength)) -}}must have at most {{ int $d.maxLength }} characters
{{- else if and $d.pattern (not (regexMatch $d.pattern $s)) -}}must match pattern {{ quote $d.pattern }} (got {{ quote $s }})
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
One place for every cross-field check. It collects all problems and fails once, so a user
fixes their values in one round instead of one error per `helm install`.
*/}}
{{- define "oag.validateValues" -}}
{{- $problems := list -}}
{{- $v := .Values -}}
{{- $schema := .Files.Get "files/config.schema.json" | fromJson -}}
{{- $managed := splitList " " (include "oag.chartManagedEnv" .) -}}
{{- range $key, $value := $v.gateway.config -}}
{{- $decl := get $schema.properties $key -}}
{{- if not $decl -}}
{{- $problems = append $problems (printf "gateway.config.%s: the service does not read this variable (see schemas/config.schema.json)" $key) -}}
{{- else if get $decl "writeOnly" -}}
{{- $problems = append $problems (printf "gateway.config.%s: a secret never goes into a ConfigMap; use gateway.secretEnv (or auth for API keys)" $key) -}}
{{- else -}}
{{- $problem := include "oag.configValueProblem" (dict "decl" $decl "value" $value) -}}
{{- if $problem -}}
{{- $problems = append $problems (printf "gateway.config.%s: %s" $key $problem) -}}
{{- end -}}
{{- end -}}
{{- if has $key $managed -}}
{{- $problems = append $problems (printf "gateway.config.%s: set by the chart; use the matching chart value instead" $key) -}}
{{- end -}}
{{- end -}}
{{- range $v.gateway.secretEnv -}}
{{- $decl := get $schema.properties .name -}}
{{- if not (and $decl (get $decl "writeOnly")) -}}
{{- $problems = append $problems (printf "gateway.secretEnv: %s is not a secret variable of the service" .name) -}}
{{- end -}}
{{- /* A token on /metrics the ServiceMonitor does not send: every scrape is a 401 and every gateway alert silent. */ -}}
{{- if and (eq .name "METRICS_TOKEN") (include "oag.serviceMonitorRendered" $) (not $v.metrics.serviceMonitor.bearerTokenSecret) -}}
{{- $problems = append $problems "metrics.serviceMonitor.bearerTokenSecret: METRICS_TOKEN protects /metrics (gateway.secretEnv), so the ServiceMonitor must send it: name the same Secret and key here" -}}
{{- end -}}
{{- end -}}
{{- /* Every model name is one Ollama and the service accept: OLLAMA_MODEL's declaration. */ -}}
{{- range $i, $model := $v.ollama.models -}}
{{- $problem := include "oag.configValueProblem" (dict "decl" (get $schema.properties "OLLAMA_MODEL") "value" $model) -}}
{{- if $problem -}}
{{- $problems = append $problems (printf "ollama.models[%d]: %s" $i $problem) -}}
{{- end -}}
{{- end -}}
{{- $drainMs := add (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_DELAY_MS")) (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_TIMEOUT_MS")) -}}
{{- if not (kindIs "invalid" $v.gateway.terminationGracePeriodSeconds) -}}
{{- /* + 2000: the service destroys sockets still open 1 s after SHUTDOWN_TIMEOUT_MS (SOCKET_GRACE_MS), then waits up to 1 s for its Redis and Ollama clients to stop (stopServices), then exits. */ -}}
{{- if le (mul (int64 $v.gateway.terminationGracePeriodSeconds) 1000) (add $drainMs 2000) -}}
{{- $problems = append $problems (printf "gateway.terminationGracePeriodSeconds: %d s does not cover SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS + 2 s (%d ms); leave it empty to compute it" (int64 $v.gateway.terminationGracePeriodSeconds) (add $drainMs 2000)) -}}
{{- end -}}
{{- end -}}
{{- $live := $v.gateway.probes.liveness -}}
{{- $loopMs := include "oag.configInt" (dict "ctx" . "key" "LIVENESS_MAX_EVENT_LOOP_DELAY_MS") | int64 -}}
{{- if le (mul $live.periodSeconds $live.failureThreshold 1000) $loopMs -}}
{{- $problems = append $problems (printf "gateway.probes.liveness: periodSeconds × failureThreshold must exceed LIVENESS_MAX_EVENT_LOOP_DELAY_MS (%d ms)" $loopMs) -}}
{{- end -}}
{{- if and (not $v.ollama.enabled) (not $v.ollama.externalHost) (not $v.ollama.externalHosts) -}}
{{- $problems = append $problems "ollama.externalHost: required when ollama.enabled is false (or ollama.externalHosts for several)" -}}
{{- end -}}
{{- if and $v.ollama.enabled (or $v.ollama.externalHost $v.ollama.externalHosts) -}}
{{- $problems = append $problems "ollama.externalHost(s): only used when ollama.enabled is false; unset one of them" -}}
{{- end -}}
{{- if and $v.ollama.externalHost $v.ollama.externalHosts -}}
{{- $problems = append $problems "ollama.externalHosts: set either ollama.externalHost (one Ollama) or ollama.externalHosts (several), not both" -}}
{{- end -}}
{{- if and $v.ollama.enabled (gt (int $v.ollama.replicaCount) 1) $v.ollama.persistence.existingClaim -}}
{{- $problems = append $problems (printf "ollama.persistence.existingClaim: one claim cannot serve %d Ollama pods; leave it empty so each pod gets its own from the claim template" (int $v.ollama.replicaCount)) -}}
{{- end -}}
{{- if and $v.ollama.enabled $v.ollama.keda.enabled -}}
{{- $k := $v.ollama.keda -}}
{{- if not $k.prometheus.serverAddress -}}
{{- $problems = append $problems "ollama.keda.prometheus.serverAddress: required when ollama.keda.enabled (the Prometheus that scrapes the gateway)" -}}
{{- end -}}
{{- if gt (int $k.minReplicaCount) (int $k.maxReplicaCount) -}}
{{- $problems = append $problems "ollama.keda.minReplicaCount: larger than ollama.keda.maxReplicaCount" -}}
{{- end -}}
{{- if $v.ollama.persistence.existingClaim -}}
{{- $problems = append $problems "ollama.persistence.existingClaim: one claim cannot serve the pods KEDA adds; leave it empty" -}}
{{- end -}}
{{- /* The default query selects the gateway by the `service` label, which the Prometheus operator adds to the targets of a ServiceMonitor. */ -}}
{{- if and (include "oag.ollama.kedaRendered" .) (not $k.prometheus.query) (not (include "oag.serviceMonitorRendered" .)) -}}
{{- $problems = append $problems "ollama.keda.prometheus.query: the default query selects the gateway's series by the `service` label a ServiceMonitor gives them, and no ServiceMonitor is rendered (metrics.serviceMonitor.enabled, and the cluster's monitoring.coreos.com/v1 API); without one the query finds no series and KEDA never scales. Enable the ServiceMonitor, or write a query for how your Prometheus scrapes the gateway" -}}
{{- end -}}
{{- end -}}
{{- $redisMode := include "oag.redis.mode" . -}}
{{- $secretNames := list -}}
{{- range $v.gateway.secretEnv -}}{{- $secretNames = append $secretNames .name -}}{{- end -}}
{{- if and (not $redisMode) (or $v.autoscaling.enabled (gt (int $v.gateway.replicaCount) 1)) -}}
{{- $problems = append $problems (printf "redis: %s without Redis: every replica would keep its own runs, idempotency keys, active model and admission queue. Leave redis.enabled empty or true (the bundled Valkey), set redis.url (an external Redis), or run one replica" ($v.autoscaling.enabled | ternary "autoscaling" (printf "%d gateway replicas" (int $v.gateway.replicaCount)))) -}}
{{- end -}}
{{- if and (eq (toString $v.redis.enabled) "true") $v.redis.url -}}
{{- $problems = append $problems "redis.url: an external Redis, but redis.enabled is true too; unset one of them" -}}
{{- end -}}
{{- if and (has "REDIS_URL" $secretNames) (or (eq $redisMode "bundled") (eq $redisMode "external")) -}}
{{- $problems = append $problems "gateway.secretEnv: REDIS_URL is set by the chart (redis.enabled or redis.url); set it in one place" -}}
{{- end -}}
{{- if $v.redis.url -}}
{{- if contains ":" ((urlParse $v.redis.url).userinfo | default "") -}}
{{- $problems = append $problems "redis.url: carries a password, which would land in the pod spec; put it in a Secret and name it in redis.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $redisMode "bundled") (not $v.redis.existingSecret) (not (include "oag.clusterReadable" .)) -}}
{{- $problems = append $problems "redis: the bundled Valkey needs a password, and the live Secret cannot be read (helm template, Argo CD, Flux, --dry-run without a cluster), so a generated one would change on every render. Create a Secret with the password and set redis.existingSecret (see the README, GitOps)" -}}
{{- end -}}
{{- if and $v.auth.existingSecret $v.auth.apiKeys -}}
{{- $problems = append $problems "auth.apiKeys: set either auth.existingSecret or auth.apiKeys, not both" -}}
{{- end -}}
{{- if and $v.auth.disabled (or $v.auth.existingSecret $v.auth.apiKeys) -}}
{{- $problems = append $problems "auth.disabled: true together with API keys; remove one" -}}
{{- end -}}
{{- if $v.podDisruptionBudget.enabled -}}
{{- $pdb := $v.podDisruptionBudget -}}
{{- $replicas := $v.autoscaling.enabled | ternary $v.autoscaling.minReplicas $v.gateway.replicaCount -}}
{{- if eq (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable) -}}
{{- $problems = append $problems "podDisruptionBudget: set exactly one of minAvailable and maxUnavailable (the other null)" -}}
{{- else if not (kindIs "invalid" $pdb.minAvailable) -}}
{{- if ge (int $pdb.minAvailable) (int $replicas) -}}
{{- $problems = append $problems (printf "podDisruptionBudget.minAvailable: %d with %d replicas would block every node drain; lower it, add replicas or use maxUnavailable" (int $pdb.minAvailable) (int $replicas)) -}}
{{- end -}}
{{- else if eq (int $pdb.maxUnavailable) 0 -}}
{{- $problems = append $problems "podDisruptionBudget.maxUnavailable: 0 would block every node drain" -}}
{{- end -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- $problems = append $problems "autoscaling.minReplicas: larger than autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.hosts) -}}
{{- $problems = append $problems "ingress.hosts: at least one host is needed when ingress.enabled" -}}
{{- end -}}
{{- if and $v.ollama.persistence.existingClaim (not $v.ollama.persistence.enabled) -}}
{{- $problems = append $problems "ollama.persistence.existingClaim: set, but ollama.persistence.enabled is false" -}}
{{- end -}}
{{- range $v.gateway.extraEnv -}}
{{- if or (has .name $managed) (hasKey $v.gateway.config .name) -}}
{{- $problems = append $problems (printf "gateway.extraEnv: %s is set by the chart or gateway.config; set it in one place" .name) -}}
{{- end -}}
{{- end -}}
{{- range $host := $v.ingress.hosts -}}
{{- range $host.paths -}}
{{- if hasPrefix (trimSuffix "/" .path | default "/") "/metrics" -}}
{{- $problems = append $problems (printf "ingress.hosts[%s].paths: %s would publish /metrics, which has no API key; list the public prefixes (/agents, /ollama, /health, /v1, /api) or leave paths empty" $host.host .path) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.httpRoute.enabled (not $v.httpRoute.parentRefs) -}}
{{- $problems = append $problems "httpRoute.parentRefs: at least one Gateway is needed when httpRoute.enabled" -}}
{{- end -}}
{{- if not (or $v.auth.disabled $v.auth.existingSecret $v.auth.apiKeys (include "oag.clusterReadable" .)) -}}
{{- $problems = append $problems "auth: no auth.existingSecret or auth.apiKeys, and the live Secret cannot be read (helm template, Argo CD, Flux, --dry-run without a cluster), so a generated key would change on every render. Create the Secret yourself and set auth.existingSecret (see the README, GitOps), or set auth.apiKeys" -}}
{{- end -}}
{{- if $v.ollama.enabled -}}
{{- $sts := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "oag.ollama.fullname" .) -}}
{{- $livePolicy := ($sts.spec | default dict).podManagementPolicy | default "OrderedReady" -}}
{{- if and $sts (ne $livePolicy $v.ollama.podManagementPolicy) -}}
{{- $problems = append $problems (printf "ollama.podManagementPolicy: the live StatefulSet has %s and it cannot change. Keep %s, or delete the StatefulSet with --cascade=orphan (the pods and claims stay) and upgrade again" $livePolicy $livePolicy) -}}
{{- end -}}
{{- end -}}
{{- if and $v.ollama.enabled $v.ollama.persistence.enabled (not $v.ollama.persistence.existingClaim) -}}
{{- $sts := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "oag.ollama.fullname" .) -}}
{{- range ($sts.spec | default dict).volumeClaimTemplates -}}
{{- $live := .spec.resources.requests.storage -}}
{{- if and (eq .metadata.name "models") (ne $live $v.ollama.persistence.size) -}}
{{- $problems = append $problems (printf "ollama.persistence.size: the live StatefulSet's claim template asks %s and cannot change. Keep %s, or resize the claim (kubectl patch pvc models-%s-0, if its StorageClass allows expansion), delete the StatefulSet with --cascade=orphan and upgrade again" $live $live (include "oag.ollama.fullname" $)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq (toString $v.gateway.image.tag) "latest" -}}
{{- $problems = append $problems "gateway.image.tag: latest is not reproducible; pin a version or a digest" -}}
{{- end -}}
{{- if eq (toString $v.ollama.image.tag) "latest" -}}
{{- $problems = append $problems "ollama.image.tag: latest is not reproducible; pin a version" -}}
{{- end -}}
{{- if eq $redisMode "bundled" -}}
{{- $live := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "oag.redis.fullname" .) -}}
{{- if $live -}}
{{- $claims := ($live.spec | default dict).volumeClaimTemplates | default list -}}
{{- $liveSize := "" -}}
{{- range $claims -}}{{- $liveSize = .spec.resources.requests.storage -}}{{- end -}}
{{- $wanted := $v.redis.persistence.enabled | ternary $v.redis.persistence.size "" -}}
{{- if ne $liveSize $wanted -}}
{{- $problems = append $problems (printf "redis.persistence: the live Valkey StatefulSet has %s, and its claim template cannot change. Keep it, or delete the StatefulSet (kubectl delete statefulset %s; its data without a claim is lost, a claim is kept) and upgrade again" (empty $liveSize | ternary "no claim" (printf "a %s claim" $liveSize)) (include "oag.redis.fullname" .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq (toString $v.redis.image.tag) "latest" -}}
{{- $problems = append $problems "redis.image.tag: latest is not reproducible; pin a version" -}}
{{- end -}}
{{- if eq (toString $v.tests.image.tag) "latest" -}}
{{- $problems = append $problems "tests.image.tag: latest is not reproducible; pin a version" -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n\nInvalid values (%d problems):\n  - %s\n" (len $problems) (join "\n  - " $problems)) -}}
{{- end -}}
{{- end -}}
