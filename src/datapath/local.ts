// Checks and normalizes what the agent says about this node before any kernel change.
import { getLink, type Link, type NetlinkSocket } from '../kernel/index.ts';
import { familyOf, normalizeCidr, normalizeIp } from '../net/text.ts';
import type { LocalNode } from './types.ts';

/** LocalNode with addresses in canonical form; throws naming the field that is wrong. */
export function normalizeLocal(local: LocalNode): LocalNode {
  if (!local.name) throw new TypeError('local node: name is empty');
  if (!local.underlayIface) throw new TypeError('local node: underlayIface is empty');
  const underlayIps: string[] = [];
  for (const ip of local.underlayIps) {
    const n = normalizeIp(ip);
    if (n === undefined) throw new TypeError(`local node: underlay address ${JSON.stringify(ip)} is not an IP address`);
    if (underlayIps.some((u) => familyOf(u) === familyOf(n)))
      throw new TypeError(`local node: more than one IPv${familyOf(n)} underlay address`);
    underlayIps.push(n);
  }
  if (underlayIps.length === 0) throw new TypeError('local node: no underlay address');
  const podCidrs: string[] = [];
  for (const c of local.podCidrs) {
    const n = normalizeCidr(c);
    if (n === undefined) throw new TypeError(`local node: pod CIDR ${JSON.stringify(c)} is not a CIDR`);
    if (podCidrs.some((p) => familyOf(p) === familyOf(n)))
      throw new TypeError(`local node: more than one IPv${familyOf(n)} pod CIDR`);
    podCidrs.push(n);
  }
  if (podCidrs.length === 0) throw new TypeError('local node: no pod CIDR');
  const out: LocalNode = { name: local.name, underlayIface: local.underlayIface, underlayIps, podCidrs };
  if (local.serviceCidrs !== undefined) {
    out.serviceCidrs = local.serviceCidrs.map((c) => {
      const n = normalizeCidr(c);
      if (n === undefined) throw new TypeError(`local node: service CIDR ${JSON.stringify(c)} is not a CIDR`);
      return n;
    });
  }
  if (local.underlayMtu !== undefined) {
    if (!Number.isInteger(local.underlayMtu) || local.underlayMtu < 68)
      throw new TypeError(`local node: underlay MTU ${local.underlayMtu} is not a usable MTU`);
    out.underlayMtu = local.underlayMtu;
  }
  return out;
}

/** The underlay interface, or an error saying the backend cannot work without it. */
export function underlayLink(nl: NetlinkSocket, local: LocalNode): Link {
  return getLink(nl, local.underlayIface);
}
