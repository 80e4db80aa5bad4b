// Names of what the plugin creates on the host. The host veth name is derived from the attachment,
// not random as in the reference bridge plugin, so DEL and GC can find it even when the pod's
// namespace (and so the peer's index) is gone.
//
// The hash is FNV-1a over 64 bits rather than SHA-256: it only has to spread attachments over 44
// bits (collisions among the pods of one node are negligible), and node:crypto costs about 4 ms of
// every pod start to load.

// FNV-1a 64 in two 32-bit halves: a BigInt multiply per byte cost about 0.4 ms of every ADD and DEL
// under Bun's interpreter. The prime is 2^40 + 0x1b3, so h * prime = (h << 40) + h * 0x1b3.
const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;
const PRIME_LO = 0x1b3;

/** FNV-1a, 64 bits, of the UTF-8 bytes of `text`. */
export function fnv1a64(text: string): bigint {
  let hi = OFFSET_HI;
  let lo = OFFSET_LO;
  for (const byte of Buffer.from(text, 'utf8')) {
    lo = (lo ^ byte) >>> 0;
    const t = lo * PRIME_LO; // < 2^41: exact in a double
    const carry = Math.floor(t / 0x1_0000_0000);
    hi = (hi * PRIME_LO + carry + ((lo << 8) >>> 0)) % 0x1_0000_0000;
    lo = t % 0x1_0000_0000;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** "veth" + 11 hex digits of a hash of (network, containerID, ifname): 15 characters, IFNAMSIZ - 1. */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  const h = fnv1a64(`${network}\0${containerId}\0${ifname}`);
  return `veth${h.toString(16).padStart(16, '0').slice(0, 11)}`;
}

/**
 * A random locally administered unicast MAC. Math.random is enough: the MAC must differ from the
 * other ports of one bridge, not be unpredictable (the kernel's own random MACs are no secret either).
 */
export function randomMac(): string {
  const b = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
  b[0] = ((b[0] as number) & 0xfe) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
