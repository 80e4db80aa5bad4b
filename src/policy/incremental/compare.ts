// What differs between two compiled models, said part by part (a local pod, a peer set, a named-port
// set, the errors): the enforcer's periodic check of the incremental compiler against compilePolicy
// logs this when they disagree. Empty: the same model (maps in the same order too).
import type { CompiledPolicy } from '../types.ts';

export function modelDifferences(expected: CompiledPolicy, actual: CompiledPolicy): string[] {
  const out: string[] = [];
  const text = (v: unknown) => JSON.stringify(v);
  if (text(expected.nodeAddresses) !== text(actual.nodeAddresses)) out.push('the node addresses');
  const byKey = (m: CompiledPolicy) => new Map(m.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const want = byKey(expected);
  const got = byKey(actual);
  for (const [k, p] of want) {
    const q = got.get(k);
    if (!q) out.push(`local pod ${k} is missing`);
    else if (text(p) !== text(q)) out.push(`local pod ${k} differs`);
  }
  for (const k of got.keys()) if (!want.has(k)) out.push(`local pod ${k} is extra`);
  if (out.length === 0 && text([...want.keys()]) !== text([...got.keys()])) out.push('the order of the local pods');
  const sets = (what: string, a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>) => {
    for (const [id, s] of a) {
      const t = b.get(id);
      if (t === undefined) out.push(`${what} ${id} is missing`);
      else if (text(s) !== text(t)) out.push(`${what} ${id} differs`);
    }
    for (const id of b.keys()) if (!a.has(id)) out.push(`${what} ${id} is extra`);
    if (text([...a.keys()]) !== text([...b.keys()])) out.push(`the order of the ${what}s`);
  };
  sets('peer set', expected.peers, actual.peers);
  sets('named-port set', expected.namedPorts, actual.namedPorts);
  if (text(expected.errors) !== text(actual.errors)) out.push('the policy errors');
  if (text(expected.warnings) !== text(actual.warnings)) out.push('the warnings');
  return out;
}
