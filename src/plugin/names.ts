// Names of what the plugin creates on the host. The host veth name is derived from the attachment,
// not random as in the reference bridge plugin, so DEL and GC can find it even when the pod's
// namespace (and so the peer's index) is gone.
import { createHash } from 'node:crypto';

/** "veth" + 11 hex digits of sha256(network, containerID, ifname): 15 characters, IFNAMSIZ - 1. */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  const h = createHash('sha256').update(`${network}\0${containerId}\0${ifname}`).digest('hex');
  return `veth${h.slice(0, 11)}`;
}
