// The enforcer's bookkeeping of conntrack cuts (--policy-conntrack), beside the cutter itself
// (flow-cutter.ts, which decides what a look deletes): which addresses still wait for their look,
// when a look is made, and the one conntrack socket the looks share.
//
//  - A pod-start bind's look (only the bound addresses) waits while notices do: those bind first, so
//    their answers are not held behind a walk of the conntrack table, and their looks and this one
//    are then one walk (cutBound, once none waits). A pass's look takes the waiting addresses along.
//  - The socket stays open between looks: opening a ctnetlink socket (socket, buffers, bind) cost more
//    than the walk of a small table right after each pod start. It is closed and opened again after
//    any error, so a dump cut short never leaves answers for the next look to misread.
import { Conntrack } from '../../kernel/conntrack.ts';
import type { CompiledPolicy } from '../../policy/index.ts';
import { cutDeniedFlows, type FlowCutterOptions } from './flow-cutter.ts';

type ConntrackSocket = Pick<Conntrack, 'list' | 'get' | 'delete' | 'close'>;

export class CutQueue {
  private readonly opts: FlowCutterOptions;
  private readonly waiting = new Set<string>();
  private socket: ConntrackSocket | undefined;
  /** What cutDeniedFlows (and its reply cutter, later, from a timer) opens: the kept socket. */
  private readonly kept: ConntrackSocket = {
    list: (family) => this.use((ct) => ct.list(family)),
    get: (family, tuple, zone) => this.use((ct) => ct.get(family, tuple, zone)),
    delete: (entry) => this.use((ct) => ct.delete(entry)),
    close: () => {},
  };

  constructor(opts: FlowCutterOptions) {
    this.opts = opts;
  }

  /** Addresses of binds whose look waits. */
  get pending(): number {
    return this.waiting.size;
  }

  /** A bind's addresses: looked for by the next cutBound or cutChange. */
  defer(ips: ReadonlyMap<string, readonly string[]>): void {
    for (const list of ips.values()) for (const ip of list) this.waiting.add(ip);
  }

  /** The look for the waiting binds' addresses, against `model` (the model applied). */
  cutBound(model: CompiledPolicy | undefined): void {
    if (this.waiting.size === 0 || !model) return;
    const ips = [...this.waiting];
    this.waiting.clear();
    cutDeniedFlows(this.cutterOptions(), model, model, ips);
  }

  /** The look for a change from `before` (none: every local pod) to `after`, the waiting binds' too. */
  cutChange(before: CompiledPolicy | undefined, after: CompiledPolicy): void {
    const also = [...this.waiting];
    this.waiting.clear();
    cutDeniedFlows(this.cutterOptions(), before, after, undefined, also);
  }

  /** Closes the kept socket (the agent stops); a later look opens another. */
  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  private cutterOptions(): FlowCutterOptions {
    return { ...this.opts, open: () => this.kept };
  }

  private use<T>(fn: (ct: ConntrackSocket) => T): T {
    this.socket ??= (this.opts.open ?? (() => Conntrack.open()))();
    try {
      return fn(this.socket);
    } catch (err) {
      this.close();
      throw err;
    }
  }
}
