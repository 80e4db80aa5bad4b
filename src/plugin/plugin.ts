// The `strand` CNI plugin. Its datapath (veth, bridge, routes through netlink) lands with the next
// issue; until then ADD/DEL/CHECK/GC answer with a clear "not implemented" CNI error.
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { CniPlugin } from '../cni/skel.ts';
import { strandVersion } from '../version.ts';

function notYet(verb: string): never {
  throw new CniError(ErrorCode.NotImplemented, `strand: ${verb} is not implemented in this version`, 'use the reference bridge plugin with "ipam": {"type": "strand-ipam"} meanwhile');
}

export const strandPlugin: CniPlugin = {
  about: `CNI strand plugin ${strandVersion}`,
  add: async () => notYet('ADD'),
  del: async () => notYet('DEL'),
  check: async () => notYet('CHECK'),
  gc: async () => notYet('GC'),
  status: async () => notYet('STATUS'),
};
