// Kernel access for the plugin and the agent: netlink (links, addresses, routes, neighbours, FDB),
// network namespaces and sysctls, all in process (DESIGN.md "Kernel access"). Importing this module
// costs nothing at start-up: koffi loads on the first kernel call (libc.ts).
export { KernelError, errnoName, isKernelError, strerror } from './errors.ts';
export { NetlinkSocket } from './netlink-socket.ts';
export type { NetlinkOptions, Operation } from './netlink-socket.ts';
export {
  addLink,
  deleteLink,
  deleteLinkIfExists,
  findLink,
  getLink,
  linkIndex,
  listLinks,
  OFFLOAD_KEYS,
  offloadDifference,
  setBridgePort,
  setLink,
  setLinkDown,
  setLinkUp,
  sleepSync,
  waitForLink,
  waitForOperUp,
} from './links.ts';
export type {
  AddLinkOptions,
  BridgeInfo,
  BridgePortChanges,
  BridgePortInfo,
  BridgeSpec,
  Link,
  LinkChanges,
  LinkFilter,
  LinkRef,
  LinkSpec,
  NetnsRef,
  OffloadSizes,
  OperState,
  PlainLinkSpec,
  VethPeerSpec,
  VethSpec,
  VxlanInfo,
  VxlanSpec,
  WaitOptions,
} from './links.ts';
export { addAddress, deleteAddress, listAddresses, waitForDad } from './addresses.ts';
export type { Address, AddressFilter, AddressOptions, Scope } from './addresses.ts';
export { addRoute, deleteRoute, listRoutes, replaceRoute } from './routes.ts';
export type { Route, RouteFilter, RouteOptions, RouteSpec, RouteType } from './routes.ts';
export {
  addFdbEntry,
  addNeighbour,
  deleteFdbEntry,
  deleteNeighbour,
  listFdbEntries,
  listNeighbours,
} from './neighbours.ts';
export type {
  FdbEntry,
  FdbFilter,
  FdbSpec,
  Neighbour,
  NeighbourFilter,
  NeighbourOptions,
  NeighbourSpec,
  NeighbourState,
} from './neighbours.ts';
export {
  assertNetns,
  CURRENT_NETNS,
  isCurrentNetns,
  isNetns,
  isNetnsFd,
  onNsfs,
  openNetns,
  sameNetns,
  withNetns,
} from './netns.ts';
export type { NotPromise } from './netns.ts';
export { ensureSysctl, interfaceSysctl, readSysctl, sysctlPath, writeSysctl, writeSysctls } from './sysctl.ts';
export type { SysctlOptions } from './sysctl.ts';
