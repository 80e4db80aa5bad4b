// Placeholder until the IPAM module lands.
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CniPlugin } from '../cni/skel.ts';
const no = async (): Promise<never> => {
  throw new CniError(ErrorCode.NotImplemented, 'strand-ipam: not implemented yet');
};
export const ipamPlugin: CniPlugin = { about: 'CNI strand-ipam plugin', add: no, del: no, check: no, gc: no, status: no };
