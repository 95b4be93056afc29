/**
 * Schemas for the prometheus-operator kinds the chart renders (monitoring.coreos.com/v1), keyed
 * by `apiVersion/kind`. kubernetes-models carries only built-in kinds, so these are transcribed
 * from the operator's CRDs (v0.75) for the fields this chart can render; the validator makes
 * them strict like the rest, so a field outside this list fails until it is added here.
 */
const META = { $ref: 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#' };
const STRING_MAP = { type: 'object', additionalProperties: { type: 'string' } };
const DURATION = {
  type: 'string',
  pattern:
    '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$',
};
const SECRET_KEY = {
  type: 'object',
  required: ['key'],
  properties: { key: { type: 'string' }, name: { type: 'string' }, optional: { type: 'boolean' } },
};
const LABEL_SELECTOR = {
  type: 'object',
  properties: {
    matchLabels: STRING_MAP,
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string' },
          operator: { type: 'string' },
          values: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
};

export const CRD_SCHEMAS: Record<string, object> = {
  'monitoring.coreos.com/v1/ServiceMonitor': {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'monitoring.coreos.com/v1' },
      kind: { const: 'ServiceMonitor' },
      metadata: META,
      spec: {
        type: 'object',
        required: ['selector'],
        properties: {
          jobLabel: { type: 'string' },
          selector: LABEL_SELECTOR,
          namespaceSelector: {
            type: 'object',
            properties: {
              any: { type: 'boolean' },
              matchNames: { type: 'array', items: { type: 'string' } },
            },
          },
          endpoints: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                port: { type: 'string' },
                targetPort: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
                path: { type: 'string' },
                scheme: { enum: ['http', 'https'] },
                interval: DURATION,
                scrapeTimeout: DURATION,
                honorLabels: { type: 'boolean' },
                authorization: {
                  type: 'object',
                  properties: { type: { type: 'string' }, credentials: SECRET_KEY },
                },
                bearerTokenSecret: SECRET_KEY,
              },
            },
          },
        },
      },
    },
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'monitoring.coreos.com/v1' },
      kind: { const: 'PrometheusRule' },
      metadata: META,
      spec: {
        type: 'object',
        properties: {
          groups: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name'],
              properties: {
                name: { type: 'string', minLength: 1 },
                interval: DURATION,
                limit: { type: 'integer' },
                partial_response_strategy: { type: 'string' },
                rules: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['expr'],
                    properties: {
                      alert: { type: 'string' },
                      record: { type: 'string' },
                      expr: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
                      for: DURATION,
                      keep_firing_for: DURATION,
                      labels: STRING_MAP,
                      annotations: STRING_MAP,
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};
