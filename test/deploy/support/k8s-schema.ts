import path from 'node:path';
import ts from 'typescript';

/**
 * Strict validation of rendered Kubernetes objects against current API schemas.
 *
 * Source: kubernetes-models 5.x (Kubernetes 1.34 OpenAPI), @kubernetes-models/gateway-api 2.x,
 * @kubernetes-models/prometheus-operator 6.x and @kubernetes-models/keda 2.x. Each model ships two views of one schema:
 * a compiled validator (types, required fields, formats, enums) and a TypeScript interface.
 * The validator, like the API server, accepts unknown fields; kubectl does not, and a
 * misspelt `readinesProbe` is silently dropped. So each object is checked twice: the model's
 * own `validate()`, then a walk over its interface (read with the TypeScript compiler API)
 * that reports every field the interface does not declare.
 */
export interface K8sValidator {
  /** Problems of one object (empty when valid); unknown kinds are a problem too. */
  validate(obj: unknown): string[];
}

/** Where each apiVersion's models live; core (`v1`) kinds sit at the package root. */
const PACKAGES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'gateway.networking.k8s.io/v1': '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
};
const modulePath = (apiVersion: string, kind: string): string =>
  `${PACKAGES[apiVersion] ?? `kubernetes-models/${apiVersion}`}/${kind}`;

/** Every kind the chart may render (extraObjects included); others are refused as unknown. */
export const KNOWN_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'Service'],
  ['v1', 'ServiceAccount'],
  ['v1', 'Pod'],
  ['v1', 'PersistentVolumeClaim'],
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['batch/v1', 'Job'],
  ['policy/v1', 'PodDisruptionBudget'],
  ['autoscaling/v2', 'HorizontalPodAutoscaler'],
  ['networking.k8s.io/v1', 'Ingress'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['rbac.authorization.k8s.io/v1', 'Role'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['gateway.networking.k8s.io/v1', 'HTTPRoute'],
  ['monitoring.coreos.com/v1', 'ServiceMonitor'],
  ['monitoring.coreos.com/v1', 'PrometheusRule'],
  ['keda.sh/v1alpha1', 'ScaledObject'],
];

interface ModelClass {
  new (data: object): { validate(): void };
}

/** The interface of every known kind, from one TypeScript program over the models' .d.ts. */
function interfaceTypes(): { checker: ts.TypeChecker; types: Map<string, ts.Type> } {
  const fileName = path.join(__dirname, '__k8s_kinds__.mts');
  const source = KNOWN_KINDS.map(
    ([v, k], i) => `import type { I${k} as T${i} } from ${JSON.stringify(modulePath(v, k))};`,
  )
    .concat(KNOWN_KINDS.map((_, i) => `export declare const k${i}: T${i};`))
    .join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    target: ts.ScriptTarget.ES2022,
    types: [],
    noEmit: true,
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => (f === fileName ? source : readFile(f));
  host.fileExists = (f) => f === fileName || fileExists(f);
  host.getSourceFile = (f, lang, ...rest) =>
    f === fileName
      ? ts.createSourceFile(f, source, lang, true, ts.ScriptKind.TS)
      : getSourceFile(f, lang, ...rest);
  // .mts: the models are ES modules, so the importing file must be one too.
  const program = ts.createProgram({ rootNames: [fileName], options, host });
  const unresolved = program
    .getSemanticDiagnostics(program.getSourceFile(fileName))
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  if (unresolved.length > 0) throw new Error(`model types not found:\n${unresolved.join('\n')}`);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(fileName) as ts.SourceFile;
  const types = new Map<string, ts.Type>();
  const declared = checker.getExportsOfModule(checker.getSymbolAtLocation(file) as ts.Symbol);
  KNOWN_KINDS.forEach(([v, k], i) => {
    const symbol = declared.find((s) => s.name === `k${i}`) as ts.Symbol;
    types.set(`${v}/${k}`, checker.getTypeOfSymbol(symbol));
  });
  return { checker, types };
}

/** Fields of `value` that `type` does not declare, recursively. */
function unknownFields(
  checker: ts.TypeChecker,
  type: ts.Type,
  value: unknown,
  at: string,
  into: string[],
): void {
  if (value === null || typeof value !== 'object') return;
  const t = checker.getNonNullableType(type);
  if (t.isUnion()) {
    // IntOrString, Quantity and the like are unions of primitives; an object union picks
    // the member that declares the most of the value's keys.
    const objects = t.types.filter((m) => m.flags & ts.TypeFlags.Object);
    const best = objects
      .map((m) => ({ m, n: Object.keys(value).filter((k) => m.getProperty(k)).length }))
      .sort((a, b) => b.n - a.n)[0];
    if (best) unknownFields(checker, best.m, value, at, into);
    return;
  }
  if (checker.isArrayType(t)) {
    const item = checker.getTypeArguments(t as ts.TypeReference)[0];
    if (item && Array.isArray(value))
      value.forEach((v, i) => unknownFields(checker, item, v, `${at}[${i}]`, into));
    return;
  }
  const props = checker.getPropertiesOfType(t);
  if (props.length === 0) {
    const values = checker.getIndexTypeOfType(t, ts.IndexKind.String);
    if (values)
      for (const [k, v] of Object.entries(value))
        unknownFields(checker, values, v, `${at}.${k}`, into);
    return; // free-form (RawExtension, JSON): nothing to check
  }
  for (const [key, v] of Object.entries(value)) {
    const prop = t.getProperty(key);
    if (!prop) into.push(`${at || '/'}: unknown field '${key}'`);
    else unknownFields(checker, checker.getTypeOfSymbol(prop), v, `${at}.${key}`, into);
  }
}

export async function createK8sValidator(): Promise<K8sValidator> {
  const { checker, types } = interfaceTypes();
  const models = new Map<string, ModelClass>();
  // The models are ES modules; the test build is CommonJS, so they load through import().
  for (const [v, k] of KNOWN_KINDS) {
    const mod = (await import(modulePath(v, k))) as Record<string, ModelClass>;
    const Model = mod[k];
    if (!Model) throw new Error(`${modulePath(v, k)} exports no ${k}`);
    models.set(`${v}/${k}`, Model);
  }
  return {
    validate(obj) {
      const { apiVersion, kind } = (obj ?? {}) as { apiVersion?: unknown; kind?: unknown };
      if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
        return ['object without apiVersion and kind'];
      }
      const key = `${apiVersion}/${kind}`;
      const Model = models.get(key);
      const type = types.get(key);
      if (!Model || !type) return [`no schema for ${apiVersion} ${kind}`];
      const problems: string[] = [];
      try {
        new Model(obj as object).validate();
      } catch (err) {
        const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
        if (!errors) throw err;
        for (const e of errors)
          problems.push(`${kind} ${e.instancePath || '/'}: ${e.message ?? ''}`);
      }
      const unknown: string[] = [];
      unknownFields(checker, type, obj, '', unknown);
      return problems.concat(unknown.map((p) => `${kind} ${p}`));
    },
  };
}
