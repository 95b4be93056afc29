import path from 'node:path';
import Ajv, { type AnySchema, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { CRD_SCHEMAS } from './crd-schemas';

/**
 * Strict validation of rendered Kubernetes objects. The schemas are the Kubernetes OpenAPI
 * definitions (v1.22) that `kubernetes-models@3.1.0` ships as plain JSON Schema (the last major
 * that keeps them as data rather than precompiled code). Those schemas, like the API server,
 * accept unknown fields; kubectl does not, and a misspelt `readinesProbe` silently drops the
 * probe. So every object schema with `properties` is copied with `additionalProperties: false`
 * into an Ajv of our own before use.
 */
export interface K8sValidator {
  /** Problems of one object (empty when valid); unknown kinds are a problem too. */
  validate(obj: unknown): string[];
}

interface SchemaRegistry {
  getSchema(id: string): { schema: AnySchema } | undefined;
}
type ModelClass = { new (data: object): { validate(): void }; prototype: object };

/** The Ajv inside @kubernetes-models/validate where the models register their schemas. */
function libraryAjv(): SchemaRegistry {
  const dir = path.dirname(require.resolve('@kubernetes-models/validate'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(dir, 'ajv.js')) as { ajv: SchemaRegistry }).ajv;
}

/** The schema id of a kind, registering its schemas in the library's Ajv on the way. */
function schemaIdOf(apiVersion: string, kind: string): string | undefined {
  const modulePath = `kubernetes-models/${apiVersion.includes('/') ? apiVersion : `v1`}/${kind}`;
  let Model: ModelClass | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Model = (require(modulePath) as Record<string, ModelClass>)[kind];
  } catch {
    return undefined;
  }
  if (!Model) return undefined;
  try {
    new Model({}).validate(); // registers the kind's schemas; the empty object's verdict is ignored
  } catch {
    /* expected for kinds with required fields */
  }
  const symbol = Object.getOwnPropertySymbols(Model.prototype).find(
    (s) => s.description === 'SCHEMA_ID',
  );
  return symbol ? ((Model.prototype as Record<symbol, string>)[symbol] ?? undefined) : undefined;
}

/** A deep copy where every object schema with `properties` refuses other properties. */
export function strictCopy(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictCopy);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    // `properties` maps names to schemas: copy each schema, never treat the map as a schema.
    out[key] =
      key === 'properties'
        ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, strictCopy(v)]))
        : strictCopy(value);
  }
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

function collectRefs(schema: unknown, into: Set<string>): void {
  if (Array.isArray(schema)) return schema.forEach((s) => collectRefs(s, into));
  if (schema === null || typeof schema !== 'object') return;
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$ref' && typeof value === 'string') into.add(value.replace(/#$/, ''));
    else collectRefs(value, into);
  }
}

/** Ajv resolves `$ref`s against the id, so a CRD's id must have no slash (like the models' ids). */
const crdId = (key: string): string => key.replace(/\//g, '.');

export function createK8sValidator(): K8sValidator {
  const library = libraryAjv();
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addFormat('int-or-string', true);
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  ajv.addFormat(
    'quantity',
    /^[+-]?(\d+|\d+\.\d+|\d+\.|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/,
  );
  const compiled = new Map<string, ValidateFunction>();

  const addWithRefs = (id: string): void => {
    const pending = [id];
    while (pending.length > 0) {
      const next = pending.pop() as string;
      if (ajv.getSchema(next)) continue;
      const found = library.getSchema(next);
      if (!found) throw new Error(`schema ${next} not found in kubernetes-models`);
      ajv.addSchema(strictCopy(found.schema) as AnySchema, next);
      const refs = new Set<string>();
      collectRefs(found.schema, refs);
      pending.push(...refs);
    }
  };
  schemaIdOf('v1', 'ConfigMap'); // registers ObjectMeta, which the CRD schemas refer to
  for (const [id, schema] of Object.entries(CRD_SCHEMAS)) {
    ajv.addSchema(strictCopy(schema) as AnySchema, crdId(id));
    const refs = new Set<string>();
    collectRefs(schema, refs);
    refs.forEach(addWithRefs);
  }

  const validatorFor = (apiVersion: string, kind: string): ValidateFunction | undefined => {
    const key = `${apiVersion}/${kind}`;
    if (!compiled.has(key)) {
      const id = CRD_SCHEMAS[key] ? crdId(key) : schemaIdOf(apiVersion, kind);
      if (!id) return undefined;
      if (!CRD_SCHEMAS[key]) addWithRefs(id);
      compiled.set(key, ajv.getSchema(id) as ValidateFunction);
    }
    return compiled.get(key);
  };

  return {
    validate(obj) {
      const { apiVersion, kind } = (obj ?? {}) as { apiVersion?: unknown; kind?: unknown };
      if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
        return ['object without apiVersion and kind'];
      }
      const validate = validatorFor(apiVersion, kind);
      if (!validate) return [`no schema for ${apiVersion} ${kind}`];
      if (validate(obj)) return [];
      return (validate.errors ?? []).map((e) => {
        const extra =
          e.keyword === 'additionalProperties'
            ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'`
            : '';
        return `${kind} ${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra}`;
      });
    },
  };
}
