// The contract of the agent's steps (issues 15 and 18): each job of the agent is a step that the main
// loop (agent.ts) runs in order. A step says which events it reads (`inputs`); an event marks those
// steps due and a pass runs only the due ones, so a pod-start notice does not set the node up again
// and a remote Pod's label change runs nothing here. A step is still level based: when it runs, it
// computes what it wants from the caches and the kernel and applies the difference, whatever events
// came before; the periodic resync runs every step, and a step whose inputs did not change since it
// last applied compares a digest (and, for kernel state, does its cheapest read) and stops.

import type { NodeInfo } from '../../k8s/objects.ts';

/** What makes steps due. */
export type StepInput =
  /** This node's Node changed (or was listed). */
  | 'this-node'
  /** Another Node changed: a peer's address, pod CIDR or annotations. */
  | 'other-nodes'
  /** A Pod scheduled to this node changed. */
  | 'local-pods'
  /** A pod-start notice from the plugin. */
  | 'notice'
  /** The underlay's addresses or MTU moved (no API event says so). */
  | 'underlay'
  /** rtnetlink announced a change to the routes, neighbours or FDB entries to other nodes. */
  | 'kernel-drift'
  /** A plugin in the CNI bin dir changed. */
  | 'plugins'
  /** A ClusterNetworkPolicy changed. */
  | 'cluster-policies'
  /** Node set-up's result changed (this node's Node, the underlay, the pod MTU, the conflist plan). */
  | 'node-set-up'
  /** The periodic level-based pass. */
  | 'resync';

export const ALL_INPUTS: readonly StepInput[] = [
  'this-node',
  'other-nodes',
  'local-pods',
  'notice',
  'underlay',
  'kernel-drift',
  'plugins',
  'cluster-policies',
  'node-set-up',
  'resync',
];

/** What a pass hands each step: this node's Node object once node set-up has found it usable. */
export interface PassContext {
  /** This node's Node, when it is set up (undefined: the steps that need it skip this pass). */
  node: NodeInfo | undefined;
  now: number;
  /** The inputs that changed since the last pass; a step may add to them for the steps after it. */
  due: Set<StepInput>;
}

export interface Step {
  readonly name: string;
  /** The events the step reads: it runs in a pass when one of them is due. */
  readonly inputs: readonly StepInput[];
  /** One pass; throwing ends the pass there (the later steps wait for the next) and the loop retries. */
  pass(ctx: PassContext): Promise<void> | void;
  /** Why this step is not ready (a /readyz reason), or undefined. */
  ready(): string | undefined;
  /** Releases what the step holds (sockets, watchers); the kernel state it made stays. */
  close?(): void;
}

/** Whether a step is due in a pass. */
export const isDue = (step: Pick<Step, 'inputs'>, due: ReadonlySet<StepInput>): boolean =>
  step.inputs.some((i) => due.has(i));
