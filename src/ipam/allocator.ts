// Allocation over a locked store: one address per range set, requested addresses first, otherwise
// round robin after the set's last reserved address (reference host-local main.go cmdAdd and
// allocator.go Get). On any failure the addresses this call reserved are released again, so a
// failed ADD leaks nothing.
import type { Attachment } from '../cni/config.ts';
import { CniError, ErrorCode, withContext } from '../cni/errors.ts';
import {
  formatIp,
  ipEquals,
  rangeFor,
  rangeSetCapacity,
  rangeSetContains,
  rangeSetString,
  roundRobin,
  type Family,
  type IpAddr,
  type Range,
  type RangeSet,
} from './range.ts';
import { heldBy, type IpamStore, type Reservation } from './store.ts';

export interface Allocation {
  ip: IpAddr;
  /** The range the address came from: its subnet's prefix length and gateway go into the result. */
  range: Range;
  rangeSetIndex: number;
}

function allocateRequested(store: IpamStore, set: RangeSet, index: number, ip: IpAddr, who: Attachment): Allocation {
  const range = rangeFor(set, ip);
  if (!range) throw new CniError(ErrorCode.Internal, `${formatIp(ip)} not in range set ${rangeSetString(set)}`);
  if (ipEquals(ip, range.gateway)) {
    throw new CniError(ErrorCode.Internal, `requested ip ${formatIp(ip)} is subnet's gateway`);
  }
  if (!store.reserve(ip, who, index)) {
    throw new CniError(
      ErrorCode.Internal,
      `requested IP address ${formatIp(ip)} is not available in range set ${rangeSetString(set)}`,
    );
  }
  return { ip, range, rangeSetIndex: index };
}

function allocateNext(
  store: IpamStore,
  set: RangeSet,
  index: number,
  who: Attachment,
  held: Reservation[],
  taken: Set<string>,
): Allocation {
  // The spec forbids a second ADD for the same attachment without DEL; the reference refuses it.
  for (const r of held) {
    if (rangeSetContains(set, r.ip)) {
      throw new CniError(
        ErrorCode.Internal,
        `${r.name} has been allocated to ${who.containerID}, duplicate allocation is not allowed`,
      );
    }
  }
  for (const { ip, range } of roundRobin(set, store.lastReserved(index))) {
    if (taken.has(formatIp(ip))) continue;
    if (store.reserve(ip, who, index)) return { ip, range, rangeSetIndex: index };
  }
  throw new CniError(ErrorCode.AddressesExhausted, `no IP addresses available in range set: ${rangeSetString(set)}`);
}

/**
 * Reserves one address per range set for `who`. A requested address is taken from the set that
 * contains it; one left over (in no set) is an error, as in the reference. The store must be open.
 */
export function allocate(
  store: IpamStore,
  sets: readonly RangeSet[],
  who: Attachment,
  requested: readonly IpAddr[] = [],
): Allocation[] {
  const remaining = [...requested];
  const all = store.reservations();
  const held = all.filter((r) => heldBy(r, who, 'exact') || heldBy(r, who, 'legacy'));
  const taken = store.fileNames();
  const done: Allocation[] = [];
  try {
    sets.forEach((set, index) => {
      const wanted = remaining.findIndex((ip) => rangeSetContains(set, ip));
      try {
        if (wanted >= 0) {
          const [ip] = remaining.splice(wanted, 1) as [IpAddr];
          done.push(allocateRequested(store, set, index, ip, who));
        } else {
          done.push(allocateNext(store, set, index, who, held, taken));
        }
      } catch (err) {
        throw withContext(err, `failed to allocate for range ${index}`);
      }
    });
    if (remaining.length > 0) {
      throw new CniError(
        ErrorCode.Internal,
        `failed to allocate all requested IPs: ${remaining.map(formatIp).join(' ')}`,
        'a requested address lies in none of the range sets',
      );
    }
  } catch (err) {
    // Release only what this call reserved: an earlier allocation of the same attachment stays.
    for (const a of done) store.remove({ name: formatIp(a.ip) });
    throw err;
  } finally {
    store.sync();
  }
  return done;
}

/** Usage of one range set, for STATUS and the agent's metrics. */
export interface RangeSetUsage {
  index: number;
  family: Family;
  /** The reference's text for the set: "start-end,start-end". */
  ranges: string;
  /** Addresses the set can hand out (its ranges without their gateways). */
  capacity: bigint;
  /** Reservations in the set. */
  used: number;
  free: bigint;
}

/** Counts reservations per range set (pure: the caller reads the store). */
export function rangeSetUsage(sets: readonly RangeSet[], reservations: readonly Reservation[]): RangeSetUsage[] {
  return sets.map((set, index) => {
    const capacity = rangeSetCapacity(set);
    const used = reservations.filter((r) => {
      const range = rangeFor(set, r.ip);
      return range !== undefined && !ipEquals(range.gateway, r.ip);
    }).length;
    const free = capacity - BigInt(used);
    return {
      index,
      family: (set[0] as Range).subnet.family,
      ranges: rangeSetString(set),
      capacity,
      used,
      free: free < 0n ? 0n : free,
    };
  });
}
