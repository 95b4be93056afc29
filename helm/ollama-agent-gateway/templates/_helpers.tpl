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

{{- define "oag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "oag.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference; refuses a `latest` tag (validateValues reports it with the rest). */}}
{{- define "oag.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}
{{- end -}}

{{- define "oag.gateway.image" -}}
{{- $img := .Values.gateway.image -}}
{{- include "oag.image" (dict "repository" $img.repository "digest" $img.digest "tag" (default .Chart.AppVersion $img.tag)) -}}
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

{{- define "oag.auth.secretName" -}}
{{- default (printf "%s-api-keys" (include "oag.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "oag.auth.secretKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}api-keys{{- end -}}
{{- end -}}

{{/* Variables the chart sets itself; users may not set them in gateway.config. */}}
{{- define "oag.chartManagedEnv" -}}
PORT OLLAMA_HOST API_KEYS_FILE AGENTS_FILE AUTH_DISABLED
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
{{- end -}}
{{- $drainMs := add (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_DELAY_MS")) (include "oag.configInt" (dict "ctx" . "key" "SHUTDOWN_TIMEOUT_MS")) -}}
{{- if not (kindIs "invalid" $v.gateway.terminationGracePeriodSeconds) -}}
{{- /* + 1000: the service destroys sockets still open 1 s after SHUTDOWN_TIMEOUT_MS (SOCKET_GRACE_MS), then exits. */ -}}
{{- if le (mul (int64 $v.gateway.terminationGracePeriodSeconds) 1000) (add $drainMs 1000) -}}
{{- $problems = append $problems (printf "gateway.terminationGracePeriodSeconds: %d s does not cover SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS + 1 s (%d ms); leave it empty to compute it" (int64 $v.gateway.terminationGracePeriodSeconds) (add $drainMs 1000)) -}}
{{- end -}}
{{- end -}}
{{- $live := $v.gateway.probes.liveness -}}
{{- $loopMs := include "oag.configInt" (dict "ctx" . "key" "LIVENESS_MAX_EVENT_LOOP_DELAY_MS") | int64 -}}
{{- if le (mul $live.periodSeconds $live.failureThreshold 1000) $loopMs -}}
{{- $problems = append $problems (printf "gateway.probes.liveness: periodSeconds × failureThreshold must exceed LIVENESS_MAX_EVENT_LOOP_DELAY_MS (%d ms)" $loopMs) -}}
{{- end -}}
{{- if and (not $v.ollama.enabled) (not $v.ollama.externalHost) -}}
{{- $problems = append $problems "ollama.externalHost: required when ollama.enabled is false" -}}
{{- end -}}
{{- if and $v.ollama.enabled $v.ollama.externalHost -}}
{{- $problems = append $problems "ollama.externalHost: only used when ollama.enabled is false; unset one of them" -}}
{{- end -}}
{{- if and $v.auth.existingSecret $v.auth.apiKeys -}}
{{- $problems = append $problems "auth.apiKeys: set either auth.existingSecret or auth.apiKeys, not both" -}}
{{- end -}}
{{- if and $v.auth.disabled (or $v.auth.existingSecret $v.auth.apiKeys) -}}
{{- $problems = append $problems "auth.disabled: true together with API keys; remove one" -}}
{{- end -}}
{{- if $v.podDisruptionBudget.enabled -}}
{{- $replicas := $v.autoscaling.enabled | ternary $v.autoscaling.minReplicas $v.gateway.replicaCount -}}
{{- if ge (int $v.podDisruptionBudget.minAvailable) (int $replicas) -}}
{{- $problems = append $problems (printf "podDisruptionBudget.minAvailable: %d with %d replicas would block every node drain; lower it or add replicas" (int $v.podDisruptionBudget.minAvailable) (int $replicas)) -}}
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
{{- if eq (toString $v.gateway.image.tag) "latest" -}}
{{- $problems = append $problems "gateway.image.tag: latest is not reproducible; pin a version or a digest" -}}
{{- end -}}
{{- if eq (toString $v.ollama.image.tag) "latest" -}}
{{- $problems = append $problems "ollama.image.tag: latest is not reproducible; pin a version" -}}
{{- end -}}
{{- if eq (toString $v.tests.image.tag) "latest" -}}
{{- $problems = append $problems "tests.image.tag: latest is not reproducible; pin a version" -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n\nInvalid values (%d problems):\n  - %s\n" (len $problems) (join "\n  - " $problems)) -}}
{{- end -}}
{{- end -}}
