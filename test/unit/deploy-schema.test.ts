// Every object of deploy/strand.yaml judged as kube-apiserver judges it on `kubectl apply`:
//   - against the upstream OpenAPI schema of its apiVersion and kind (kubernetes-models: validators
//     generated from Kubernetes' own OpenAPI document, one per kind and version): types, required
//     fields, enums, int-or-string;
//   - with strict field validation (kubectl's default since Kubernetes 1.27: an unknown or
//     misspelt field is an error, not silently dropped), from @kubernetes/client-node's models,
//     which are generated from the same OpenAPI document and list every field of every type.
// Deliberately broken objects show that both checks refuse what the API server would.
import * as k8s from '@kubernetes/client-node';
import { loadAllYaml } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const docs = loadAllYaml(readFileSync(new URL('deploy/strand.yaml', root), 'utf8')) as Record<string, unknown>[];

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

/** The kubernetes-models class of an apiVersion and kind ("apps/v1", "DaemonSet"). */
async function modelOf(apiVersion: string, kind: string): Promise<ModelClass> {
  const mod = (await import(/* @vite-ignore */ `kubernetes-models/${apiVersion}`)) as Record<string, unknown>;
  const model = mod[kind];
  if (typeof model !== 'function') throw new Error(`kubernetes-models has no ${kind} in ${apiVersion}`);
  return model as ModelClass;
}

/** The schema's complaints about `obj`, one line each ("" when it is valid). */
async function schemaErrors(obj: Record<string, unknown>): Promise<string> {
  const Model = await modelOf(obj.apiVersion as string, obj.kind as string);
  try {
    new Model(obj).validate();
    return '';
  } catch (err) {
    const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
    return errors ? errors.map((e) => `${e.instancePath} ${e.message ?? ''}`).join('\n') : (err as Error).message;
  }
}

interface Attribute {
  baseName: string;
  type: string;
}
type Model = { getAttributeTypeMap(): Attribute[] };

function modelType(name: string): Model | undefined {
  const m = (k8s as unknown as Record<string, unknown>)[name] as Partial<Model> | undefined;
  return typeof m?.getAttributeTypeMap === 'function' ? (m as Model) : undefined;
}

/**
 * The fields of `value` that its type does not have (paths like "spec.template.spec.containers[0].imagePullPolcy"),
 * walking client-node's generated models: "V1Container", "Array<V1Container>", "{ [key: string]: string; }".
 */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array)
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1] as string, `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map)
    return value && typeof value === 'object'
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1] as string, `${path}.${k}`))
      : [];
  const model = modelType(type);
  if (!model || !value || typeof value !== 'object' || Array.isArray(value)) return [];
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const t = attrs.get(k);
    const p = path ? `${path}.${k}` : k;
    return t === undefined ? [p] : unknownFields(v, t, p);
  });
}

/** client-node's model name of an object: "V1" + kind for every group at version v1. */
function clientModelName(obj: Record<string, unknown>): string {
  const version = (obj.apiVersion as string).split('/').at(-1) as string;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind as string}`;
}

describe('deploy/strand.yaml against the Kubernetes OpenAPI schemas', () => {
  it('has objects to check, each of an apiVersion and kind the schemas know', async () => {
    expect(docs.length).toBeGreaterThanOrEqual(6);
    for (const d of docs) {
      await expect(modelOf(d.apiVersion as string, d.kind as string)).resolves.toBeTypeOf('function');
      expect(modelType(clientModelName(d)), clientModelName(d)).toBeDefined();
    }
  });

  for (const d of docs) {
    const name = `${d.kind as string} ${(d.metadata as { name?: string } | undefined)?.name ?? '?'}`;
    it(`${name}: valid for ${d.apiVersion as string} ${d.kind as string}, with no field the API does not know`, async () => {
      expect(await schemaErrors(d)).toBe('');
      expect(unknownFields(d, clientModelName(d), '')).toEqual([]);
    });
  }
});

describe('the checks refuse what the API server refuses', () => {
  const daemonSet = () => structuredClone(docs.find((d) => d.kind === 'DaemonSet')) as any;

  it('a wrong type, a missing required field', async () => {
    const port = daemonSet();
    port.spec.template.spec.containers[0].ports[0].containerPort = 'health';
    expect(await schemaErrors(port)).toMatch(
      /\/spec\/template\/spec\/containers\/0\/ports\/0\/containerPort must be integer/,
    );

    const noSelector = daemonSet();
    delete noSelector.spec.selector;
    expect(await schemaErrors(noSelector)).toMatch(/\/spec must have required property '?selector'?/);

    const noName = daemonSet();
    delete noName.spec.template.spec.containers[0].name;
    expect(await schemaErrors(noName)).toMatch(/containers\/0 must have required property '?name'?/);

    const role = structuredClone(docs.find((d) => d.kind === 'ClusterRole')) as any;
    role.rules[0].verbs = 'list';
    expect(await schemaErrors(role)).toMatch(/\/rules\/0\/verbs must be array/);
  });

  it('a misspelt field, at any depth', () => {
    const ds = daemonSet();
    ds.spec.template.spec.containers[0].imagePullPolcy = 'Always';
    ds.spec.template.spec.volumes[0].hostpath = { path: '/x' };
    ds.spec.updateStrategy.rollingUpdate.maxUnavaliable = 1;
    expect(unknownFields(ds, 'V1DaemonSet', '').sort()).toEqual([
      'spec.template.spec.containers[0].imagePullPolcy',
      'spec.template.spec.volumes[0].hostpath',
      'spec.updateStrategy.rollingUpdate.maxUnavaliable',
    ]);
  });
});
