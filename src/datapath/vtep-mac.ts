// The VXLAN device's MAC address, derived from the node name.
//
// Why derived and not random: every peer holds this MAC in a permanent neighbour entry and an FDB
// entry. A MAC that changed at each agent restart (or reboot: the node state lives on a tmpfs) would
// black-hole traffic to this node's pods on every peer until each of them has seen the new
// annotation and reprogrammed itself. A derived MAC needs no state file that could be lost,
// comes back the same after a reboot, a reinstall or the device being deleted by hand, and is the
// same whichever replica of the agent computes it. Node names are unique in a cluster, and 46 bits
// of SHA-256 make two names sharing a MAC improbable (the backend still reports it if it happens).
import { createHash } from 'node:crypto';
import { formatMac, parseMac } from '../net/ip.ts';

/** A locally administered unicast MAC ("0e:…", "a2:…") that depends only on nodeName. */
export function vtepMacFor(nodeName: string): string {
  const digest = createHash('sha256').update(`strand-vtep:${nodeName}`).digest();
  const mac = Uint8Array.from(digest.subarray(0, 6));
  // IEEE 802: bit 0 of the first octet is the group (multicast) bit, bit 1 "locally administered".
  mac[0] = (mac[0]! & 0xfe) | 0x02;
  return formatMac(mac);
}

/** True for a well-formed unicast MAC other than all zeros: one a VTEP can have. */
export function isUsableVtepMac(text: string): boolean {
  let mac: Uint8Array;
  try {
    mac = parseMac(text);
  } catch {
    return false;
  }
  return (mac[0]! & 0x01) === 0 && mac.some((b) => b !== 0);
}

/** Lower-case colon form, as the kernel reports MACs. */
export function normalizeMac(text: string): string {
  return formatMac(parseMac(text));
}
