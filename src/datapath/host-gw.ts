// The host-gw backend: no encapsulation, one route per peer pod CIDR via the peer's underlay address
// out of the underlay interface (flannel's host-gw, kindnet's routes). It works only between nodes
// on one layer-2 segment: a peer whose underlay address is outside every prefix of the underlay
// interface gets no route and is reported, because the kernel would refuse such a gateway anyway
// ("Nexthop has invalid gateway") or, worse, send through a default router that knows no pod CIDRs.
import { podMtu } from './mtu.ts';
import type { NetlinkSocket } from '../kernel/index.ts';
import {
  deleteLeftoverDevices,
  deleteStrandRoutes,
  emptyReport,
  forwardingWarnings,
  reconcileEntries,
} from './datapath.ts';
import { normalizeLocal, underlayLink } from './local.ts';
import { localAnnotations } from './peer.ts';
import type { Backend, Change, LocalNode, Peer, ReconcileReport, ReconcileWatch, SetUpResult } from './types.ts';

export class HostGwBackend implements Backend {
  readonly kind = 'host-gw' as const;
  private readonly nl: NetlinkSocket;
  private local: LocalNode | undefined;

  /** nl: a socket in the node's network namespace; its netns is also where sysctls are read. */
  constructor(nl: NetlinkSocket) {
    this.nl = nl;
  }

  setUp(localNode: LocalNode): SetUpResult {
    const local = normalizeLocal(localNode);
    const underlay = underlayLink(this.nl, local);
    // A VXLAN device from an earlier configuration would keep answering for this node's VTEP.
    const changes = deleteLeftoverDevices(this.nl, undefined);
    this.local = local;
    return {
      annotations: localAnnotations('host-gw', local),
      podMtu: podMtu('host-gw', local.underlayMtu ?? underlay.mtu),
      changes,
      warnings: forwardingWarnings(this.nl.netns, local.podCidrs),
    };
  }

  async reconcile(peers: readonly Peer[], watch?: ReconcileWatch): Promise<ReconcileReport> {
    const local = this.local;
    if (!local) throw new Error('host-gw backend: reconcile before setUp');
    const started = performance.now();
    const report = emptyReport();
    try {
      const underlay = underlayLink(this.nl, local);
      await reconcileEntries(
        this.nl,
        { kind: 'host-gw' },
        local,
        { underlay: { index: underlay.index, name: underlay.name } },
        peers,
        report,
        watch,
      );
    } catch (err) {
      report.problems.push({
        message: `reconcile host-gw routes: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
    report.durationMs = performance.now() - started;
    return report;
  }

  tearDown(): Change[] {
    this.local = undefined;
    return deleteStrandRoutes(this.nl);
  }
}
