// IPAM for the strand plugin: strand-ipam runs in this process (no second executable start on the pod
// start path); any other type is executed from CNI_PATH as CNI 1.1 §4 says, so the reference
// host-local works too. Both receive the complete network configuration and the same environment.
import { execDelegate } from '../cni/delegate.ts';
import type { Verb } from '../cni/env.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Result } from '../cni/result.ts';
import type { Invocation } from '../cni/skel.ts';
import { ipamPlugin } from '../ipam/plugin.ts';

export const IN_PROCESS_IPAM = 'strand-ipam';

type IpamVerb = Exclude<Verb, 'VERSION'>;

export async function runIpam(type: string, verb: IpamVerb, inv: Invocation): Promise<Result | undefined> {
  if (type === IN_PROCESS_IPAM) {
    switch (verb) {
      case 'ADD':
        return ipamPlugin.add(inv);
      case 'DEL':
        return void (await ipamPlugin.del(inv));
      case 'CHECK':
        return void (await ipamPlugin.check(inv));
      case 'GC':
        return void (await ipamPlugin.gc(inv));
      case 'STATUS':
        return void (await ipamPlugin.status(inv));
    }
  }
  return execDelegate(type, verb, inv.env, inv.stdin);
}

export async function ipamAdd(type: string, inv: Invocation): Promise<Result> {
  const result = await runIpam(type, 'ADD', inv);
  if (!result?.ips?.length) {
    throw new CniError(ErrorCode.DelegateFailure, `IPAM plugin ${type} returned missing IP config`);
  }
  return result;
}
