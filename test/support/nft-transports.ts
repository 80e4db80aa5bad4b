// Two throwaway network namespaces with the same nftables table driven two ways: over netlink (the
// agent's transport) in one and through `nft -f` (the independent judge) in the other, so a test can
// apply the same transactions to both and compare what each kernel holds. Call `destroy()` in
// afterEach: it closes the netlink sockets and removes the namespaces, pass or fail.
import { createNetlinkTransport, type NetlinkTransport } from '../../src/nft/netlink/transport.ts';
import type { TableRef } from '../../src/nft/objects.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import type { NftTransport } from '../../src/nft/transport.ts';
import { TestNetns } from './netns.ts';

export interface TransportPair {
  nl: NetlinkTransport;
  proc: NftTransport;
  a: TestNetns;
  b: TestNetns;
}

export class TransportPairs {
  private readonly made: TestNetns[] = [];
  private readonly transports: NetlinkTransport[] = [];

  constructor(private readonly table: TableRef) {}

  /** `a` is programmed over netlink, `b` by the nft process; their names start with the kinds given. */
  pair(kindA: string, kindB: string): TransportPair {
    const a = TestNetns.create(kindA);
    const b = TestNetns.create(kindB);
    this.made.push(a, b);
    const nl = createNetlinkTransport({ table: this.table, netns: a.name });
    this.transports.push(nl);
    return { nl, proc: createNftRunner({ table: this.table, netns: b.name }), a, b };
  }

  destroy(): void {
    for (const t of this.transports.splice(0)) t.close();
    for (const ns of this.made.splice(0)) ns.destroy();
  }
}
