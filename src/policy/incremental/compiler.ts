// The incremental compiler (issue 18: work proportional to the change): compilePolicy's result
// (compile.ts, which stays the oracle and the fallback), built from what the last compile built
// wherever the objects it was built from are the same (informers replace an object on change):
//   - the cluster view: pods, namespace lists and labels, nodes (view.ts);
//   - per local pod and tier, its rules: kept while its ClusterPod, its namespace's NetworkPolicies
//     (the NetworkPolicy tier) or its namespace's labels and the ClusterNetworkPolicies (the cluster
//     tiers) are the same objects; only the pods that changed are compiled, by the tiers themselves;
//   - the LocalPod itself while its addresses and every tier's rules are the same objects;
//   - peer and named-port sets (peers.ts).
// Its result deep-equals compilePolicy(input) (test/unit/policy-incremental.test.ts), and the parts
// that did not change are the previous result's objects, which the render and diff rely on.
import type { ClusterPod, ClusterView, OwnedPod } from '../cluster.ts';
import { PeerRegistry, ruleListIds, type NamedPortDef } from '../peers.ts';
import { TIERS } from '../pipeline.ts';
import type { PreparableInput, TierDirections, TierMemo } from '../tier.ts';
import type {
  ClusterNetworkPolicyObject,
  CompiledPolicy,
  CompiledRule,
  CompileInput,
  LocalPod,
  NetworkPolicyObject,
  PeerMeaning,
  PodDirection,
  PolicyError,
  PolicyPod,
} from '../types.ts';
import { PeerResolver } from './peers.ts';
import { samePlain } from '../../util/same-plain.ts';
import { alignLists, copyInto } from './align.ts';
import { sameList, ViewBuilder, type Slicer, type ViewChanges } from './view.ts';

interface TierState {
  /** Per local pod compiled last time: what the tier said (undefined: nothing). */
  pods: Map<ClusterPod, TierDirections | undefined>;
  errors: readonly PolicyError[];
}

interface LocalMemo {
  ips: readonly string[];
  tiers: readonly (TierDirections | undefined)[];
  local: LocalPod;
}

const noSlice: Slicer = function* () {};

/** Runs a generator of steps, giving the event loop back (`breathe`) when a slice took `sliceMs`. */
async function sliced<T>(
  steps: (slice: Slicer) => Generator<void, T, void>,
  breathe: () => Promise<void>,
  sliceMs: number,
): Promise<T> {
  let since = performance.now();
  const slice: Slicer = function* () {
    if (performance.now() - since >= sliceMs) yield;
  };
  const it = steps(slice);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await breathe();
    since = performance.now();
  }
}
/** More policies in or out than this in one pass: every namespace with policies is compiled again. */
const REGROUP_MAX = 1000;
/** Local pods compiled by a tier between looks at the clock. */
const TIER_CHUNK = 50;

export class IncrementalCompiler {
  private readonly views = new ViewBuilder();
  private readonly resolver = new PeerResolver();
  private tiers: TierState[] | undefined;
  /** Each tier's own state between this compiler's compiles (PolicyTier.compile's memo). */
  private readonly memos: TierMemo[] = TIERS.map(() => new WeakMap());
  /** The members of `policies`, for aligning the next list with it (align.ts). */
  private policySet = new Set<NetworkPolicyObject>();
  private policies: NetworkPolicyObject[] | undefined;
  private cnps: readonly ClusterNetworkPolicyObject[] | undefined;
  private locals = new WeakMap<OwnedPod, LocalMemo>();
  private meanings = new Map<string, PeerMeaning>();
  private defs = new Map<string, NamedPortDef>();
  private last: { view: ClusterView; compiled: CompiledPolicy } | undefined;
  /** The lists the tiers last prepared (PolicyTier.prepare) in full; dropped by the first compile. */
  private preparedFrom: PreparableInput | undefined;
  private lastPods: readonly LocalPod[] | undefined;
  /** The peers and named ports the last local pods' rules name (`meanings`, `defs`: those and any
   * the tiers registered since). */
  private named: { meanings: ReadonlyMap<string, PeerMeaning>; defs: ReadonlyMap<string, NamedPortDef> } = {
    meanings: new Map(),
    defs: new Map(),
  };

  /** The view of the last compile (for prepareBinds: the same cluster, not built again). */
  get view(): ClusterView | undefined {
    return this.last?.view;
  }

  /** This node's pods of the input last compiled, addresses or not, without walking the cluster's. */
  localInputPods(input: CompileInput): PolicyPod[] {
    return this.last ? this.views.localInputPods(input) : [...input.pods];
  }

  /** compilePolicy(input), at once. */
  compile(input: CompileInput): CompiledPolicy {
    const steps = this.steps(input, noSlice);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** compilePolicy(input), giving the event loop back (`breathe`) whenever a slice took `sliceMs`. */
  compileAsync(input: CompileInput, breathe: () => Promise<void>, sliceMs = 20): Promise<CompiledPolicy> {
    return sliced((slice) => this.steps(input, slice), breathe, sliceMs);
  }

  /**
   * The tiers' work that does not depend on the pods (PolicyTier.prepare), ahead of the first compile:
   * the agent calls it while the pods are still being listed, with the policies listed so far. The
   * compile's result is the same with or without it (the tiers' memos are keyed by the objects).
   */
  prepareAsync(input: PreparableInput, breathe: () => Promise<void>, sliceMs = 10): Promise<void> {
    return sliced((slice) => this.prepare(input, slice), breathe, sliceMs);
  }

  private *prepare(input: PreparableInput, slice: Slicer): Generator<void, void, void> {
    // The informers' lists are the same arrays while nothing changed: the first compile after the
    // last prepare finds it done without walking 10,000 policies again.
    const was = this.preparedFrom;
    if (
      was &&
      sameList(was.policies, input.policies) &&
      sameList(was.namespaces, input.namespaces) &&
      sameList(was.clusterNetworkPolicies, input.clusterNetworkPolicies)
    )
      return;
    this.preparedFrom = undefined;
    for (const tier of TIERS) if (tier.prepare) yield* tier.prepare(input, slice);
    // Copies: a caller may change its arrays in place.
    this.preparedFrom = {
      policies: [...input.policies],
      namespaces: [...input.namespaces],
      clusterNetworkPolicies: input.clusterNetworkPolicies && [...input.clusterNetworkPolicies],
    };
  }

  private *steps(input: CompileInput, slice: Slicer): Generator<void, CompiledPolicy, void> {
    // The first compile's tiers parse every NetworkPolicy (memoised on the object) at once: 10,000
    // at start, 0.3-0.5 s in one task. Done here first, in slices (nothing left when the agent
    // prepared them while the pods were listed); later compiles see few new ones.
    if (this.tiers === undefined) yield* this.prepare(input, slice);
    this.preparedFrom = undefined;
    const { view, changes } = yield* this.views.build(input, slice);
    const dirty = this.dirtyTiers(input, changes);
    const state: TierState[] = [];
    const registry = new PeerRegistry();
    for (const [i, tier] of TIERS.entries()) {
      const prev = this.tiers?.[i];
      const todo = prev ? view.localPods.filter((o) => !prev.pods.has(o.pod) || dirty[i]?.(o.pod)) : view.localPods;
      const pods = new Map<ClusterPod, TierDirections | undefined>();
      let errors: readonly PolicyError[] = prev?.errors ?? [];
      if (todo.length > 0 || !prev || dirty[i]?.(undefined)) {
        // In parts of the local pods, so that a whole compile (start, a relist) gives the event loop
        // back between them; a tier's errors are its policies', the same for every part.
        for (let at = 0; at === 0 || at < todo.length; at += TIER_CHUNK) {
          const part = todo.slice(at, at + TIER_CHUNK);
          const r = tier.compile(input, { ...view, localPods: part }, registry, this.memos[i]);
          errors = r.errors;
          for (const o of part) pods.set(o.pod, kept(prev?.pods.get(o.pod), r.pods.get(o.pod)));
          yield* slice();
        }
      }
      for (const o of view.localPods) if (!pods.has(o.pod)) pods.set(o.pod, prev?.pods.get(o.pod));
      state.push({ pods, errors });
    }
    // forEach: no entry array for each of the ~300 peers at every compile.
    registry.registered.meanings.forEach((m, id) => this.meanings.set(id, m));
    registry.registered.namedPorts.forEach((d, id) => this.defs.set(id, d));

    const pods: LocalPod[] = view.localPods.map((o) => this.localPod(o, state));
    // The peers and named ports the local pods' rules name, as the compile's registry would hold them:
    // the last ones while the local pods are the same objects.
    if (!sameList(this.lastPods, pods)) {
      const meanings = new Map<string, PeerMeaning>();
      const defs = new Map<string, NamedPortDef>();
      // Pods selected by the same ClusterNetworkPolicies share one rule list (thousands of rules): once.
      const walked = new Set<readonly CompiledRule[]>();
      for (const p of pods) {
        for (const d of directionsOf(p)) {
          if (!d || walked.has(d.rules)) continue;
          walked.add(d.rules);
          const ids = ruleListIds(d.rules);
          for (const id of ids.peers) meanings.set(id, this.meanings.get(id) as PeerMeaning);
          for (const id of ids.namedPorts) defs.set(id, this.defs.get(id) as NamedPortDef);
        }
      }
      // What the registry knows beyond these is dropped here, not kept for ever.
      this.meanings = meanings;
      this.defs = defs;
      this.named = { meanings: new Map(meanings), defs: new Map(defs) };
      this.lastPods = pods;
    }
    const { meanings, defs } = this.named;
    const { peers, namedPorts } = yield* this.resolver.resolve(view, changes, meanings, defs, slice);

    this.tiers = state;
    const errors = state.flatMap((s) => s.errors ?? []);
    const compiled: CompiledPolicy = {
      nodeName: input.nodeName,
      nodeAddresses: view.nodeAddresses,
      pods,
      peers,
      namedPorts,
      errors,
      warnings: view.warnings,
    };
    this.last = { view, compiled };
    return compiled;
  }

  /**
   * Per tier, which kept pods must be compiled again (`pod` undefined: whether the tier's policies
   * changed, so its errors are found again). NetworkPolicy: the pod's namespace's policies changed;
   * the cluster tiers: the ClusterNetworkPolicies, or the pod's namespace's labels.
   */
  private dirtyTiers(input: CompileInput, changes: ViewChanges): ((pod: ClusterPod | undefined) => boolean)[] {
    const policies = input.policies;
    let npNamespaces: Set<string> | undefined;
    let npChanged = false;
    if (!sameList(this.policies, policies)) {
      npChanged = true;
      const was = this.policies;
      const aligned = was && alignLists(was, policies, this.policySet, REGROUP_MAX);
      npNamespaces = new Set<string>();
      if (aligned) {
        // The namespaces of the policies that came and went, not a regrouping of every policy.
        for (const p of [...aligned.outs, ...aligned.ins]) npNamespaces.add(p.metadata.namespace ?? '');
        for (const p of aligned.outs) this.policySet.delete(p);
        for (const p of aligned.ins) this.policySet.add(p);
      } else {
        // Many at once, or in another order (a relist): every namespace that has policies, before or now.
        for (const p of [...(was ?? []), ...policies]) npNamespaces.add(p.metadata.namespace ?? '');
        this.policySet = new Set(policies);
      }
      this.policies = copyInto(this.policies, policies); // a copy: a caller may change its array in place
    }
    const cnps = input.clusterNetworkPolicies ?? [];
    const cnpChanged = !sameList(this.cnps, cnps);
    const cnpsWere = this.cnps;
    this.cnps = [...cnps];
    return TIERS.map((tier) => {
      if (tier.name === 'networkpolicy')
        return (pod) => (pod === undefined ? npChanged : npNamespaces?.has(pod.namespace) === true);
      // The tier's own policies (tier.changed): an Admin change leaves Baseline's pods alone.
      const changed = cnpChanged && (cnpsWere === undefined || (tier.changed?.(cnpsWere, cnps) ?? true));
      return (pod) => changed || (pod !== undefined && changes.labels.has(pod.namespace));
    });
  }

  private localPod(o: OwnedPod, state: TierState[]): LocalPod {
    const tiers = state.map((s) => s.pods.get(o.pod));
    const was = this.locals.get(o);
    if (was && sameList(was.ips, o.ips) && sameList(was.tiers, tiers)) return was.local;
    const local: LocalPod = { namespace: o.pod.namespace, name: o.pod.name, ips: o.ips };
    TIERS.forEach((tier, i) => {
      const d = tiers[i];
      if (d) tier.attach(local, d);
    });
    this.locals.set(o, { ips: o.ips, tiers, local });
    return local;
  }
}

/**
 * The pod's last rules when the tier compiled equal ones again: a policy change compiles every pod of
 * its namespace (a ClusterNetworkPolicy change every local pod), most of which it does not select;
 * keeping their objects keeps their LocalPod, so the render and the diff pass over them by identity.
 */
function kept(was: TierDirections | undefined, now: TierDirections | undefined): TierDirections | undefined {
  return was !== undefined && now !== undefined && samePlain(was, now) ? was : now;
}

function directionsOf(p: LocalPod): (PodDirection | undefined)[] {
  return [p.ingress, p.egress, p.admin?.ingress, p.admin?.egress, p.baseline?.ingress, p.baseline?.egress];
}
