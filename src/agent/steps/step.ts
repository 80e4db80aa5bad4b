// The contract of the agent's steps (issue 15): each job of the agent is a step that the main loop
// (agent.ts) runs in order on every pass. A pass is level based: a step computes what it wants from
// the caches and the kernel and applies the difference, whatever events came before.

import type { NodeInfo } from '../../k8s/objects.ts';

/** What a pass hands each step: this node's Node object once node set-up has found it usable. */
export interface PassContext {
  /** This node's Node, when it is set up (undefined: the steps that need it skip this pass). */
  node: NodeInfo | undefined;
  now: number;
}

export interface Step {
  readonly name: string;
  /** One pass; throwing ends the pass there (the later steps wait for the next) and the loop retries. */
  pass(ctx: PassContext): Promise<void> | void;
  /** Why this step is not ready (a /readyz reason), or undefined. */
  ready(): string | undefined;
  /** Releases what the step holds (sockets, watchers); the kernel state it made stays. */
  close?(): void;
}
