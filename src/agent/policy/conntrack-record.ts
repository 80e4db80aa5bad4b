// Which pod addresses may have conntrack entries the flow cutter must look at (flow-cutter.ts), so
// that a pod-start bind of an address that cannot have any walks nothing. Finding a pod's entries
// is a dump of the whole table: the kernel walks every bucket of the hash, shared by all network
// namespaces (262,144 here), whatever the number of entries, 5–60 ms a family on a 2-core machine.
//
// Why an address can be clean: an entry only matters to a new pod's policy when it can carry
// packets that `ct state established` accepts, and an entry becomes established only by a reply,
// which someone holding the address sent. An entry made towards an address nobody holds stays
// unreplied, and its next packets are judged as new connections (nothing to cut). So an address no
// pod held since the agent's first full look, and that no entry carried at that look, has no entry
// a cut would delete. The record:
//   - starts at the first cut (the first apply: every local pod, both families, the whole table):
//     every address an entry carries (as original source or reply source, the two ends the cutter
//     judges) is unclean;
//   - every address a local pod of an applied model holds is unclean from then on (its flows may
//     outlive the pod: a later pod of the same address needs the cut);
//   - until that first look succeeded, nothing is clean.
// Left out, as the cutter leaves it out: an entry made with a forged source address (a pod
// answering for an address it was not given); NetworkPolicy does not judge such a sender either.
export class ConntrackRecord {
  private readonly unclean = new Set<string>();
  private started = false;

  /** The first look's addresses (every entry of the table); from now on, other addresses are clean. */
  lookedAtAll(addresses: Iterable<string>): void {
    for (const a of addresses) this.unclean.add(a);
    this.started = true;
  }

  /** Addresses pods held in an applied model: not clean any more, whatever comes next. */
  held(addresses: Iterable<string>): void {
    for (const a of addresses) this.unclean.add(a);
  }

  /** Whether no entry the cutter would judge can carry `address` (see the file's comment). */
  clean(address: string): boolean {
    return this.started && !this.unclean.has(address);
  }
}
