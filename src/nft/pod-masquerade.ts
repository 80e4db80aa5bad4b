// The plugin's `ipMasq` (reference bridge): traffic from a pod to anything outside its own subnet
// (multicast excepted) leaves with the node's address. Done in process over nf_tables netlink in
// Strand's own table `inet strand`, so the pod start path runs no `nft` process:
//
//   chain cni-masquerade  (type nat hook postrouting priority srcnat)
//     ip saddr @cni-<net>-<subnet> jump cni-<net>-<subnet>       one rule per network and subnet
//   chain cni-<net>-<subnet>
//     ip daddr & <mask> == <subnet> return
//     ip daddr & <mcast mask> == <mcast net> return
//     masquerade
//   set cni-<net>-<subnet>  { pod addresses, each with the comment <host veth name> }
//
// Per pod there is one set element, never a rule, so packet cost does not grow with pods and DEL
// removes exactly what ADD added. The element's comment is the attachment's host veth name (a hash of
// network, container ID and interface), so DEL and GC find it without the pod's namespace or IPs.
import { createHash } from 'node:crypto';
import { isKernelError, NetlinkSocket } from '../kernel/index.ts';
import { formatIp, networkOf, parseCidr } from '../net/ip.ts';
import type { MessageBuilder } from '../kernel/netlink-codec.ts';
import { NETLINK_NETFILTER, NLM_F } from '../kernel/netlink-const.ts';
import {
  batchMarker,
  decodeSetElements,
  decodeSetName,
  delSetElements,
  getSetElements,
  getSets,
  newChain,
  newRule,
  newSet,
  newSetElements,
  newTable,
  NF_INET_POST_ROUTING,
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  NFT_JUMP,
  NFT_RETURN,
  PRIORITY_SRCNAT,
  TYPE_IP6ADDR,
  TYPE_IPADDR,
  type Expr,
  type SetElement,
} from './netlink-msgs.ts';

export const TABLE = 'strand';
export const BASE_CHAIN = 'cni-masquerade';

function hash8(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 8);
}

/** The prefix of every set and chain of one network. */
export function networkPrefix(network: string): string {
  return `cni-${hash8(network)}-`;
}

interface SubnetPlan {
  name: string;
  family: 4 | 6;
  network: Uint8Array;
  mask: Uint8Array;
}

function maskOf(bytes: number, prefixLength: number): Uint8Array {
  const m = new Uint8Array(bytes);
  for (let bit = 0; bit < prefixLength; bit++) m[bit >> 3] = (m[bit >> 3] as number) | (0x80 >> (bit & 7));
  return m;
}

export function planFor(network: string, podCidr: string): SubnetPlan {
  const c = parseCidr(podCidr);
  const net = networkOf(c.bytes, c.prefixLength);
  return {
    name: `${networkPrefix(network)}${hash8(`${formatIp(net)}/${c.prefixLength}`)}`,
    family: c.family,
    network: net,
    mask: maskOf(net.length, c.prefixLength),
  };
}

const V4 = {
  nfproto: NFPROTO_IPV4,
  saddr: 12,
  daddr: 16,
  len: 4,
  mcastNet: Uint8Array.of(224, 0, 0, 0),
  mcastMask: Uint8Array.of(240, 0, 0, 0),
};
const V6 = {
  nfproto: NFPROTO_IPV6,
  saddr: 8,
  daddr: 24,
  len: 16,
  mcastNet: Uint8Array.of(0xff, ...new Array<number>(15).fill(0)),
  mcastMask: Uint8Array.of(0xff, ...new Array<number>(15).fill(0)),
};

/** The messages that create a subnet's set, chain and rules; the chain is created exclusively, so a
 * second caller's batch fails with EEXIST as a whole and nothing is duplicated. */
function ensureMessages(p: SubnetPlan): MessageBuilder[] {
  const f = p.family === 4 ? V4 : V6;
  const setId = 1;
  const daddrIn = (net: Uint8Array, mask: Uint8Array): Expr[] => [
    { kind: 'meta-nfproto' },
    { kind: 'cmp-eq', data: Uint8Array.of(f.nfproto) },
    { kind: 'payload', offset: f.daddr, len: f.len },
    { kind: 'bitwise', len: f.len, mask },
    { kind: 'cmp-eq', data: net },
  ];
  const create = NLM_F.CREATE;
  return [
    newTable(TABLE, create),
    newChain(TABLE, BASE_CHAIN, create, { hook: NF_INET_POST_ROUTING, priority: PRIORITY_SRCNAT, type: 'nat' }),
    newSet(
      { table: TABLE, name: p.name, keyType: p.family === 4 ? TYPE_IPADDR : TYPE_IP6ADDR, keyLen: f.len, id: setId },
      create,
    ),
    newChain(TABLE, p.name, create | NLM_F.EXCL),
    newRule(
      TABLE,
      p.name,
      [...daddrIn(p.network, p.mask), { kind: 'verdict', code: NFT_RETURN }],
      create | NLM_F.APPEND,
    ),
    newRule(
      TABLE,
      p.name,
      [...daddrIn(f.mcastNet, f.mcastMask), { kind: 'verdict', code: NFT_RETURN }],
      create | NLM_F.APPEND,
    ),
    newRule(TABLE, p.name, [{ kind: 'masq' }], create | NLM_F.APPEND),
    newRule(
      TABLE,
      BASE_CHAIN,
      [
        { kind: 'meta-nfproto' },
        { kind: 'cmp-eq', data: Uint8Array.of(f.nfproto) },
        { kind: 'payload', offset: f.saddr, len: f.len },
        { kind: 'lookup', set: p.name, setId },
        { kind: 'verdict', code: NFT_JUMP, chain: p.name },
      ],
      create | NLM_F.APPEND,
    ),
  ];
}

function transaction(nl: NetlinkSocket, messages: MessageBuilder[], what: string): void {
  nl.transaction(batchMarker(NFNL_MSG_BATCH_BEGIN), messages, batchMarker(NFNL_MSG_BATCH_END), what);
}

export function openNftSocket(): NetlinkSocket {
  return NetlinkSocket.open({ protocol: NETLINK_NETFILTER });
}

/**
 * Masquerades traffic from each pod address (CIDR with the pod subnet's prefix) leaving its subnet.
 * `owner` is the attachment's host veth name; adding an address twice is harmless.
 */
export function addPodMasquerade(nl: NetlinkSocket, network: string, owner: string, podCidrs: readonly string[]): void {
  for (const cidr of podCidrs) {
    const plan = planFor(network, cidr);
    try {
      transaction(nl, ensureMessages(plan), `create masquerade chain ${plan.name} in table inet ${TABLE}`);
    } catch (err) {
      // Made already, by an earlier pod of this subnet or a concurrent ADD.
      if (!isKernelError(err, 'EEXIST')) throw err;
    }
    const element: SetElement = { key: parseCidr(cidr).bytes, comment: owner };
    transaction(
      nl,
      [newSetElements(TABLE, plan.name, [element], NLM_F.CREATE)],
      `add ${cidr.split('/')[0]} to set ${plan.name} in table inet ${TABLE}`,
    );
  }
}

/** Names of this network's sets; none when the table does not exist. */
function networkSets(nl: NetlinkSocket, network: string): string[] {
  const prefix = networkPrefix(network);
  let messages: ReturnType<NetlinkSocket['dump']>;
  try {
    messages = nl.dump(getSets(TABLE), `list sets of table inet ${TABLE}`);
  } catch (err) {
    if (isKernelError(err, 'ENOENT')) return [];
    throw err;
  }
  return messages
    .map(decodeSetName)
    .flatMap((s) => (s && s.table === TABLE && s.name.startsWith(prefix) ? [s.name] : []));
}

/**
 * Removes the masquerade elements of this network whose owner (host veth name) `drop` selects;
 * returns how many it removed. Used by DEL (one owner) and GC (every owner not valid).
 */
export function removePodMasquerade(nl: NetlinkSocket, network: string, drop: (owner: string) => boolean): number {
  let removed = 0;
  for (const set of networkSets(nl, network)) {
    const elements = nl
      .dump(getSetElements(TABLE, set), `list set ${set} of table inet ${TABLE}`)
      .flatMap(decodeSetElements);
    const gone = elements.filter((e) => e.comment !== undefined && drop(e.comment));
    if (gone.length === 0) continue;
    try {
      transaction(
        nl,
        [
          delSetElements(
            TABLE,
            set,
            gone.map((e) => ({ key: e.key })),
          ),
        ],
        `remove ${gone.length} address(es) from set ${set} of table inet ${TABLE}`,
      );
      removed += gone.length;
    } catch (err) {
      // A concurrent DEL of the same attachment removed them first.
      if (!isKernelError(err, 'ENOENT')) throw err;
    }
  }
  return removed;
}
