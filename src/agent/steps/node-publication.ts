// Step 2, node publication: what this node tells the cluster through its Node object: the condition
// NetworkUnavailable=False once set up, and (for the cluster-network step, which computes them) its
// strand.dev/ annotations: backend, underlay address, VTEP MAC. Each patch is sent once and not again
// while the watch has not shown it yet (10 s); a failed one asks for a retry.
import type { Logger } from '../../log.ts';
import type { Clock } from '../clock.ts';
import { describeError, type KubeClient } from '../../k8s/client.ts';
import { type NodeInfo } from '../../k8s/objects.ts';
import type { AgentMetrics } from '../metrics.ts';
import { markNetworkAvailable, networkMarkedAvailable } from '../../k8s/node-patch.ts';
import type { PassContext, Step } from './step.ts';

/** A patch sent this recently is not sent again while the watch has not shown it. */
const PATCH_SHOWN_WITHIN_MS = 10_000;

export interface NodePublicationOptions {
  nodeName: string;
  kube: KubeClient;
  log: Logger;
  clock: Clock;
  metrics: Pick<AgentMetrics, 'apiErrors'>;
  retry: () => void;
}

export class NodePublicationStep implements Step {
  readonly name = 'node-publication';
  readonly inputs = ['this-node', 'node-set-up', 'resync'] as const;
  private readonly opts: NodePublicationOptions;
  private conditionPatching = false;
  private conditionPatchedAt = 0;
  private annotationsPatched = { body: '', at: 0 };

  constructor(opts: NodePublicationOptions) {
    this.opts = opts;
  }

  ready(): string | undefined {
    return undefined;
  }

  pass(ctx: PassContext): void {
    if (ctx.node) this.ensureCondition(ctx.node);
  }

  private ensureCondition(node: NodeInfo): void {
    const { clock, log, nodeName } = this.opts;
    if (networkMarkedAvailable(node) || this.conditionPatching) return;
    // The patch was sent: the watch has not shown it yet.
    if (clock.now() - this.conditionPatchedAt < PATCH_SHOWN_WITHIN_MS) return;
    this.conditionPatching = true;
    markNetworkAvailable(this.opts.kube, nodeName).then(
      () => {
        this.conditionPatching = false;
        this.conditionPatchedAt = clock.now();
        log.info({ node: nodeName }, 'set the node condition NetworkUnavailable=False (StrandIsUp)');
      },
      (err: unknown) => {
        this.conditionPatching = false;
        this.opts.metrics.apiErrors.inc({ resource: 'nodes' });
        log.warn({ err: describeError(err) }, 'could not set the node condition NetworkUnavailable=False; retrying');
        this.opts.retry();
      },
    );
  }

  /** Publishes this node's strand.dev/ annotations (backend, underlay address, VTEP MAC) by merge patch. */
  annotate(node: NodeInfo, want: Record<string, string>): void {
    const { clock, log } = this.opts;
    const have = node.metadata.annotations ?? {};
    const differ = Object.fromEntries(Object.entries(want).filter(([k, v]) => have[k] !== v));
    if (Object.keys(differ).length === 0) return;
    // The same patch was sent moments ago and the watch has not shown it yet; a different one goes now.
    const body = JSON.stringify(differ);
    if (body === this.annotationsPatched.body && clock.now() - this.annotationsPatched.at < PATCH_SHOWN_WITHIN_MS)
      return;
    this.annotationsPatched = { body, at: clock.now() };
    this.opts.kube
      .request('PATCH', `/api/v1/nodes/${encodeURIComponent(this.opts.nodeName)}`, {
        body: { metadata: { annotations: differ } },
        contentType: 'application/merge-patch+json',
        timeoutMs: 30_000,
      })
      .then(
        () => log.info({ annotations: differ }, 'published the node annotations'),
        (err: unknown) => {
          this.annotationsPatched = { body: '', at: 0 };
          this.opts.metrics.apiErrors.inc({ resource: 'nodes' });
          log.warn({ err: describeError(err) }, 'could not publish the node annotations; retrying');
          this.opts.retry();
        },
      );
  }
}
