// The agent's datapath backends for pods across nodes (VXLAN, host-gw). The agent:
//   const backend = createBackend(nl, { kind: 'vxlan', vni: 1, port: 4789, directRouting: false });
//   const { annotations, podMtu } = backend.setUp(localNode);   // publish annotations, write podMtu
//   await backend.reconcile(peersFromNodes(nodes, localNode.name).peers);   // on every Node change and periodically
import type { NetlinkSocket } from '../kernel/index.ts';
import { HostGwBackend } from './host-gw.ts';
import type { Backend } from './types.ts';
import { VxlanBackend, type VxlanOptions } from './vxlan.ts';

export type BackendConfig = ({ kind: 'vxlan' } & VxlanOptions) | { kind: 'host-gw' };

/** A backend working in the namespace of nl (the node's; a test's or the simulator's node). */
export function createBackend(nl: NetlinkSocket, config: BackendConfig): Backend {
  switch (config.kind) {
    case 'vxlan':
      return new VxlanBackend(nl, config);
    case 'host-gw':
      return new HostGwBackend(nl);
  }
}

export { vtepAddress } from './cidr.ts';
export { onTheLoop, VXLAN_DEVICE_PATTERN, vxlanDeviceName } from './datapath.ts';
export { desiredState, desiredSteps, PEERS_PER_STEP } from './desired.ts';
export { backendOverhead, podMtu, VXLAN_OVERHEAD, vxlanOverhead } from './mtu.ts';
export type {
  DatapathMode,
  DesiredFdb,
  DesiredInput,
  DesiredNeighbour,
  DesiredRoute,
  DesiredState,
} from './desired.ts';
export { planChanges, planSteps } from './diff.ts';
export type { ActualFdb, ActualNeighbour, ActualRoute, ActualState, Devices, Plan, PlanOp } from './diff.ts';
export { HostGwBackend } from './host-gw.ts';
export { localAnnotations, parseUnderlayIps, peerFromNode, peersFromNodes, peersFromNodesSteps } from './peer.ts';
export type { PeerResult, PeersFromNodes } from './peer.ts';
export { ANNOTATIONS, STRAND_ROUTE_PROTOCOL } from './types.ts';
export type {
  Backend,
  BackendKind,
  Change,
  KernelObject,
  LocalNode,
  Peer,
  OwnedEntries,
  Problem,
  ReconcileReport,
  ReconcileWatch,
  SetUpResult,
} from './types.ts';
export { DEFAULT_VNI, DEFAULT_VXLAN_PORT, VxlanBackend } from './vxlan.ts';
export type { VxlanOptions } from './vxlan.ts';
export { isUsableVtepMac, vtepMacFor } from './vtep-mac.ts';
