// `strand status`: is this node's networking healthy, and if not, why. Gathers (the agent's
// snapshot over its socket, the node's files, the kernel's datapath in this namespace) and hands
// everything to the pure judgement in status-report.ts. Works with the agent stopped: the report
// then says what it could not see.
import { agentSocketPath } from '../contracts/agent-socket.ts';
import { NetlinkSocket } from '../kernel/index.ts';
import { inspectAgent } from './agent-query.ts';
import { readKernelView } from './kernel-view.ts';
import { ipamUsage, readConflist, readNodeStateFile } from './node-files.ts';
import type { NodePaths } from './output.ts';
import { judgeStatus, type StatusInputs, type StatusReport } from './status-report.ts';

export async function gatherStatus(paths: NodePaths, opts: { timeoutMs?: number } = {}): Promise<StatusReport> {
  const socket = agentSocketPath(paths.stateDir);
  const agent = await inspectAgent(socket, opts.timeoutMs ?? 5_000);
  const nodeState = readNodeStateFile(paths.stateDir);
  const conflist = readConflist(paths.cniConfDir);
  const snap = agent.kind === 'answer' ? agent.value : undefined;
  const bridge = snap?.node.bridge ?? (typeof conflist.netconf?.bridge === 'string' ? conflist.netconf.bridge : 'cni0');
  const inputs: StatusInputs = {
    socket,
    bridgeName: bridge,
    agent:
      agent.kind === 'answer' ? { kind: 'answer', value: agent.value } : { kind: agent.kind, message: agent.message },
    nodeState,
    conflist: { path: conflist.path, ok: conflist.ok, ...(conflist.error ? { error: conflist.error } : {}) },
    ipam: [ipamUsage(paths, conflist)],
    unseen: [],
  };
  try {
    const nl = NetlinkSocket.open();
    try {
      const k = readKernelView(nl, {
        underlayIface: snap?.node.underlay?.iface,
        vxlanDevice: snap?.node.vxlanDevice,
        bridge,
        podCidrs: snap?.node.podCIDRs ?? nodeState.state?.podCIDRs ?? [],
      });
      inputs.kernel = { actual: k.actual, forwarding: k.forwarding, bridgePorts: k.bridgePorts };
      if (k.underlay) inputs.kernel.underlay = k.underlay;
      if (k.vxlanDevice) inputs.kernel.vxlanDevice = k.vxlanDevice;
      if (k.bridge) inputs.kernel.bridge = k.bridge;
      if (k.devices) inputs.kernel.devices = k.devices;
    } finally {
      nl.close();
    }
  } catch (err) {
    inputs.kernelError = (err as Error).message;
  }
  return judgeStatus(inputs);
}
