// The flat groups' objects (flat-render.ts, renderFlatGroup) kept from one render to the next: a group
// is rendered again only when its rules (its name hashes them) or the peer and named-port set objects
// they name changed (the incremental compiler keeps an unchanged set's object), so an unchanged group
// gives the very chains, maps and element lists it gave before and the identity diff skips them.
import type { RenderOptions } from '../render.ts';
import type { FlatGroupRequest } from '../render.ts';
import type { CompiledPolicy } from '../types.ts';
import { renderFlatGroup, type FlatParts } from './flat-render.ts';

interface Kept {
  deps: unknown[];
  parts: FlatParts;
}

/** The set objects a group's flattening reads, in rule order. */
export function depsOf(req: FlatGroupRequest, model: CompiledPolicy): unknown[] {
  const out: unknown[] = [];
  for (const r of req.rules) {
    if (r.peers !== 'all') for (const id of r.peers) out.push(model.peers.get(id));
    for (const id of r.namedPorts) out.push(model.namedPorts.get(id));
  }
  return out;
}

export const same = (a: readonly unknown[], b: readonly unknown[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

export class FlatGroups {
  private kept = new Map<string, Kept>();

  render(
    groups: ReadonlyMap<string, FlatGroupRequest>,
    model: CompiledPolicy,
    options: RenderOptions,
  ): Map<string, FlatParts> {
    const out = new Map<string, FlatParts>();
    const next = new Map<string, Kept>();
    for (const [name, req] of groups) {
      const deps = depsOf(req, model);
      let k = this.kept.get(name);
      if (!k || !same(k.deps, deps)) {
        const parts = renderFlatGroup(req.tier, req.direction, req.rules, model.peers, model.namedPorts, options);
        k = { deps, parts };
      }
      next.set(name, k);
      out.set(name, k.parts);
    }
    this.kept = next;
    return out;
  }
}
