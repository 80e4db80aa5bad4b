// What `strand uninstall` removes besides the files install put in the CNI dirs: everything else
// Strand put on the node. The agent's node state and socket; its VXLAN device(s) `strand.<VNI>` and
// its routes (rtm_protocol 0x53, host-gw and direct routes); the nftables table `inet strand` (the
// agent's masquerade and the plugin's `cni-*` objects); and, once no pod is attached to it any
// more, the pod bridge and strand-ipam's reservations of the `strand` network. A bridge that still
// has pods keeps them networked: it stays, with a note, and so do their reservations.
//
// Refused while an agent answers on its socket: it would put everything back on its next pass
// (delete the DaemonSet first).
import { AGENT_SOCKET_FILE, NODE_STATE_FILE } from '../defaults.ts';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { STRAND_ROUTE_PROTOCOL } from '../datapath/types.ts';
import {
  deleteLinkIfExists,
  deleteRoute,
  isKernelError,
  listLinks,
  listRoutes,
  NetlinkSocket,
} from '../kernel/index.ts';
import { NETLINK_NETFILTER } from '../kernel/netlink-const.ts';
import { batchMarker, delTable, getTable, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END } from '../nft/netlink-msgs.ts';
import { NETWORK_NAME } from '../contracts/conflist.ts';
import type { Step } from './install.ts';

export interface NodeCleanupOptions {
  stateDir: string;
  ipamDataDir: string;
  bridge: string;
  dryRun?: boolean;
}

const VXLAN_DEVICE = /^strand\.\d+$/;
const NODE_FILES = [NODE_STATE_FILE, AGENT_SOCKET_FILE];

/** True when something accepts connections on the agent's socket. */
export function agentListening(socketPath: string, timeoutMs = 1_000): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(socketPath);
    const done = (live: boolean) => {
      s.destroy();
      resolve(live);
    };
    s.setTimeout(timeoutMs, () => done(true));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

export async function refuseWhileAgentRuns(stateDir: string): Promise<void> {
  const socket = join(stateDir, AGENT_SOCKET_FILE);
  if (await agentListening(socket)) {
    throw new Error(
      `a Strand agent is running on this node (${socket} answers): delete the DaemonSet first, or pass --keep-datapath`,
    );
  }
}

export async function cleanUpNode(opts: NodeCleanupOptions): Promise<Step[]> {
  await refuseWhileAgentRuns(opts.stateDir);
  const steps: Step[] = [];
  const act = (step: Step, fn: () => void) => {
    if (step.action === 'remove' && !opts.dryRun) fn();
    steps.push(step);
  };

  for (const name of NODE_FILES) {
    const path = join(opts.stateDir, name);
    act({ path, action: existsSync(path) ? 'remove' : 'absent' }, () => rmSync(path, { force: true }));
  }

  const nl = NetlinkSocket.open();
  try {
    for (const link of listLinks(nl, { kind: 'vxlan' }).filter((l) => VXLAN_DEVICE.test(l.name))) {
      act(
        {
          path: `link ${link.name}`,
          action: 'remove',
          note: 'the VXLAN device, with its routes, neighbours and FDB entries',
        },
        () => deleteLinkIfExists(nl, link.index),
      );
    }
    for (const family of [4, 6] as const) {
      for (const r of listRoutes(nl, { family }).filter((x) => x.protocol === STRAND_ROUTE_PROTOCOL)) {
        act({ path: `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}`, action: 'remove' }, () => {
          try {
            deleteRoute(nl, {
              dst: r.dst,
              ...(r.gateway ? { gateway: r.gateway } : {}),
              protocol: STRAND_ROUTE_PROTOCOL,
            });
          } catch (err) {
            // Gone with its device meanwhile.
            if (!isKernelError(err, 'ESRCH')) throw err;
          }
        });
      }
    }
    steps.push(...removeTable(opts.dryRun ?? false));

    const bridge = listLinks(nl).find((l) => l.name === opts.bridge);
    const ports = bridge ? listLinks(nl, { master: bridge.index }).length : 0;
    if (!bridge) steps.push({ path: `link ${opts.bridge}`, action: 'absent' });
    else if (bridge.kind !== 'bridge')
      steps.push({ path: `link ${opts.bridge}`, action: 'keep', note: "not a bridge, so not Strand's" });
    else if (ports > 0)
      steps.push({ path: `link ${opts.bridge}`, action: 'keep', note: `${ports} pod(s) still attached` });
    else act({ path: `link ${opts.bridge}`, action: 'remove' }, () => deleteLinkIfExists(nl, bridge.index));

    const ipamDir = join(opts.ipamDataDir, NETWORK_NAME);
    if (!existsSync(ipamDir)) steps.push({ path: ipamDir, action: 'absent' });
    else if (ports > 0) steps.push({ path: ipamDir, action: 'keep', note: 'the attached pods hold addresses in it' });
    else
      act({ path: ipamDir, action: 'remove', note: `${readdirSync(ipamDir).length} entries` }, () =>
        rmSync(ipamDir, { recursive: true, force: true }),
      );
  } finally {
    nl.close();
  }
  return steps;
}

function removeTable(dryRun: boolean): Step[] {
  const path = 'nftables table inet strand';
  const nft = NetlinkSocket.open({ protocol: NETLINK_NETFILTER });
  try {
    if (dryRun) {
      nft.request(getTable('strand'), 'find table inet strand');
      return [{ path, action: 'remove' }];
    }
    nft.transaction(
      batchMarker(NFNL_MSG_BATCH_BEGIN),
      [delTable('strand')],
      batchMarker(NFNL_MSG_BATCH_END),
      'delete table inet strand',
    );
    return [{ path, action: 'remove' }];
  } catch (err) {
    if (isKernelError(err, 'ENOENT')) return [{ path, action: 'absent' }];
    throw err;
  } finally {
    nft.close();
  }
}
