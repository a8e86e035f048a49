/**
 * Kubernetes objects checked against the published schemas, with no unknown
 * fields. kubernetes-models' validate() checks types and required fields but
 * accepts unknown keys (a typo such as `readinesProbe` would pass and be
 * dropped by the API server). So `unknownFields` walks the object alongside
 * the TypeScript declarations those models ship — generated from the same
 * OpenAPI definitions / CRD schemas, so the field names are the real ones —
 * with the TypeScript compiler's own type checker (interfaces, inline object
 * types, arrays, maps with free keys), and `validateObject` does both.
 */
import { dirname, join } from 'node:path';
import ts from 'typescript';

const MODELS = dirname(require.resolve('kubernetes-models/package.json'));
const PROMETHEUS_OPERATOR = dirname(require.resolve('@kubernetes-models/prometheus-operator/package.json'));

interface Kind {
  /** d.ts declaring interface I<Kind> */
  dts: string;
  /** the model class (validate() = types and required fields) */
  load: () => new (data: never) => { validate(): void };
}

/** Every kind the deploy manifests may contain; anything else is an error (so nothing goes unchecked). */
const KINDS: Record<string, Kind> = {
  'apps/v1/Deployment': { dts: join(MODELS, 'apps/v1/Deployment.d.ts'), load: () => require('kubernetes-models/apps/v1/Deployment').Deployment },
  'apps/v1/StatefulSet': { dts: join(MODELS, 'apps/v1/StatefulSet.d.ts'), load: () => require('kubernetes-models/apps/v1/StatefulSet').StatefulSet },
  'v1/Service': { dts: join(MODELS, 'v1/Service.d.ts'), load: () => require('kubernetes-models/v1/Service').Service },
  'v1/ConfigMap': { dts: join(MODELS, 'v1/ConfigMap.d.ts'), load: () => require('kubernetes-models/v1/ConfigMap').ConfigMap },
  'v1/Secret': { dts: join(MODELS, 'v1/Secret.d.ts'), load: () => require('kubernetes-models/v1/Secret').Secret },
  'v1/Namespace': { dts: join(MODELS, 'v1/Namespace.d.ts'), load: () => require('kubernetes-models/v1/Namespace').Namespace },
  'networking.k8s.io/v1/NetworkPolicy': { dts: join(MODELS, 'networking.k8s.io/v1/NetworkPolicy.d.ts'), load: () => require('kubernetes-models/networking.k8s.io/v1/NetworkPolicy').NetworkPolicy },
  'monitoring.coreos.com/v1/PodMonitor': { dts: join(PROMETHEUS_OPERATOR, 'monitoring.coreos.com/v1/PodMonitor.d.ts'), load: () => require('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor').PodMonitor },
  'monitoring.coreos.com/v1/ServiceMonitor': { dts: join(PROMETHEUS_OPERATOR, 'monitoring.coreos.com/v1/ServiceMonitor.d.ts'), load: () => require('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor').ServiceMonitor },
  'monitoring.coreos.com/v1/PrometheusRule': { dts: join(PROMETHEUS_OPERATOR, 'monitoring.coreos.com/v1/PrometheusRule.d.ts'), load: () => require('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule').PrometheusRule },
};

/** Container-level fragments (docs show these on their own). */
const FRAGMENTS: Record<string, string> = {
  Container: join(MODELS, 'v1/Container.d.ts'),
  Probe: join(MODELS, 'v1/Probe.d.ts'),
};

let program: ts.Program | undefined;
function checker(): { program: ts.Program; checker: ts.TypeChecker } {
  program ??= ts.createProgram([...Object.values(KINDS).map((k) => k.dts), ...Object.values(FRAGMENTS)], { strict: true, noEmit: true, skipLibCheck: true, types: [] });
  return { program, checker: program.getTypeChecker() };
}

function interfaceType(dts: string, name: string): ts.Type {
  const { program: p, checker: c } = checker();
  const source = p.getSourceFile(dts);
  if (!source) throw new Error(`schema declarations not found: ${dts}`);
  let found: ts.Type | undefined;
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === name) found = c.getTypeAtLocation(node);
  });
  if (!found) throw new Error(`interface ${name} not declared in ${dts}`);
  return found;
}

/** Every key path in `value` that the schema type does not define. */
function walk(value: unknown, type: ts.Type, path: string, out: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const c = checker().checker;
  const t = c.getNonNullableType(type);
  if (Array.isArray(value)) {
    const element = c.isArrayType(t) ? c.getTypeArguments(t as ts.TypeReference)[0] : undefined;
    if (element) value.forEach((item, i) => walk(item, element, `${path}[${i}]`, out));
    return;
  }
  // unions (IntOrString, string | number …): only an object member can have fields
  const candidates = t.isUnion() ? t.types.filter((m) => m.getProperties().length > 0 || c.getIndexInfosOfType(m).length > 0) : [t];
  if (candidates.length !== 1) return;
  const object = candidates[0]!;
  if (c.getIndexInfosOfType(object).length > 0 && object.getProperties().length === 0) return; // a map: free keys
  if (object.getProperties().length === 0) return; // Quantity, Time …: opaque
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const childPath = path ? `${path}.${key}` : key;
    const property = object.getProperty(key);
    if (!property) {
      out.push(childPath);
      continue;
    }
    const declaration = property.valueDeclaration ?? property.declarations?.[0];
    if (!declaration) continue;
    walk(child, c.getTypeOfSymbolAtLocation(property, declaration), childPath, out);
  }
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

/** Key paths of `obj` that its kind's schema does not define ([] = none). */
export function unknownFields(obj: K8sObject): string[] {
  const kind = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (!kind) throw new Error(`no schema known for ${obj.apiVersion} ${obj.kind} (add it to KINDS in test/deploy/k8s-fields.ts)`);
  const out: string[] = [];
  walk(obj, interfaceType(kind.dts, `I${obj.kind}`), '', out);
  return out;
}

/** Unknown fields of a fragment (a Container or Probe shown on its own). */
export function unknownFragmentFields(value: unknown, fragment: keyof typeof FRAGMENTS): string[] {
  const out: string[] = [];
  walk(value, interfaceType(FRAGMENTS[fragment]!, `I${fragment}`), '', out);
  return out;
}

/** Problems of one object: schema violations (types, required fields) and unknown fields; [] = valid. */
export function validateObject(obj: K8sObject): string[] {
  const where = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
  const kind = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (!kind) return [`${where}: no schema known for ${obj.apiVersion} ${obj.kind} (add it to KINDS in test/deploy/k8s-fields.ts)`];
  const problems: string[] = [];
  try {
    new (kind.load())(obj as never).validate();
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  for (const field of unknownFields(obj)) problems.push(`${where}: unknown field ${field}`);
  return problems;
}
