// Over 400 lines: the plugin's verbs at top level with their undo list, read top to bottom.
// The `strand` CNI plugin: a veth pair per pod, the host end on the node's bridge, the pod end with
// its addresses and routes (cni-spec.md §8, the reference bridge plugin's behaviour). The verbs are
// at top level and read top to bottom; the kernel work is in bridge.ts and pod.ts, IPAM in ipam.ts.
import type { Attachment } from '../cni/config.ts';
import { asCniError, CniError, ErrorCode } from '../cni/errors.ts';
import { ipVersionOf, type Interface, type IpConfig, type Result, type Route } from '../cni/result.ts';
import type { CniPlugin, Invocation } from '../cni/skel.ts';
import {
  addLink,
  deleteLinkIfExists,
  setLinkUp,
  findLink,
  listAddresses,
  listRoutes,
  NetlinkSocket,
  setBridgePort,
  interfaceSysctl,
  KernelError,
  type OffloadSizes,
  type Link,
} from '../kernel/index.ts';
import { firstHost, parseCidr, formatIp } from '../net/ip.ts';
import { loadIpamConfig } from '../ipam/config.ts';
import { readReservations, storeDir } from '../ipam/store.ts';
import { eventLog, type EventLog } from '../event-log.ts';
import { readNodeState, type NodeState } from '../contracts/node-state.ts';
import { checkAgentReady, startAnnouncement, type Announcement } from './agent-client.ts';
import {
  enableForwarding,
  ensureBridge,
  ensureGatewayAddresses,
  ensureOffload,
  writeSysctlIfPresent,
} from './bridge.ts';
import { loadPluginConfig, type PluginConfig } from './config.ts';
import { IN_PROCESS_IPAM, ipamAdd, runIpam } from './ipam.ts';
import { hostVethName, randomMac } from './names.ts';
import { configurePodInterface, familyGateways, routeSpec } from './pod.ts';
import { checkPodNetns, openDelNetns } from './pod-netns.ts';

// ---- ADD -----------------------------------------------------------------------------------------

async function add(inv: Invocation): Promise<Result> {
  const cfg = loadPluginConfig(inv);
  const log = logger(cfg, inv);
  const netns = inv.env.netns;
  const ifname = inv.env.ifname;
  const hostVeth = hostVethName(cfg.net.name, inv.env.containerId, ifname);
  checkPodNetns(netns);

  const undo: (() => unknown)[] = [];
  const host = NetlinkSocket.open();
  const pod = NetlinkSocket.open({ netns });
  try {
    // Refuse a taken interface name before anything is allocated or created (CNI 1.1 §2 ADD).
    if (findLink(pod, ifname)) {
      throw new CniError(
        ErrorCode.InvalidEnvironment,
        `container interface name "${ifname}" already exists in ${netns}`,
      );
    }
    const node = nodeLinkSettings(cfg);
    const mtu = cfg.mtu ?? node.mtu;
    const offload = node.podOffload;
    // strand-ipam in process takes the node state read here (usePodCidr): node.json once per ADD.
    const ipamInv: Invocation = node.state ? { ...inv, nodeState: { dir: cfg.stateDir, state: node.state } } : inv;

    let ips: IpConfig[] = [];
    let routes: Route[] = [];
    let dns = cfg.net.dns;
    if (cfg.ipamType) {
      const ipamType = cfg.ipamType;
      const r = await ipamAdd(ipamType, ipamInv);
      undo.push(() => runIpam(ipamType, 'DEL', inv));
      ips = r.ips ?? [];
      routes = r.routes ?? [];
      dns ??= r.dns;
    }
    // The agent binds the pod's rules while the pod is wired here (its answer is read below).
    let announcing: Announcement | undefined;
    if (cfg.agentSocket) {
      const a = startAnnouncement({
        socketPath: cfg.agentSocket,
        waitMs: cfg.agentWaitMs,
        env: inv.env,
        hostVeth,
        ips: ips.map((ip) => ip.address),
        log,
        whenNoAgent: cfg.policyWhenNoAgent,
      });
      announcing = a;
      undo.push(() => a.abandon());
    }
    const gateways = cfg.isGateway ? gatewaysFor(ips) : [];
    if (cfg.isDefaultGateway) routes = withDefaultRoutes(routes, ips);

    const bridge = ensureBridge(host, { name: cfg.bridge, mtu, promisc: cfg.promiscMode });

    // A host end left by an ADD of this attachment that was killed half way: ours by its name.
    if (deleteLinkIfExists(host, hostVeth)) log.warn({ hostVeth }, 'removed a stale host veth of this attachment');
    const hostMac = randomMac();
    const podMac = cfg.mac ?? randomMac();
    // Echoed back: the host end's index and the pod end's (its peer), so neither the bridge port
    // setting nor the pod's configuration looks a link up by name again (a lookup is a request that
    // waits its turn for the kernel's RTNL lock while other pods start).
    const made = addLink(
      host,
      {
        kind: 'veth',
        name: hostVeth,
        mtu,
        mac: hostMac,
        master: bridge.index,
        // With an agent, the host end stays down until its answer: no packet reaches the pod (nor leaves
        // it) before the pod's policy rules are in the kernel, not even before the ADD returns.
        up: !cfg.agentSocket,
        ...(offload ? { offload } : {}),
        peer: { name: ifname, netns, mtu, mac: podMac, ...(offload ? { offload } : {}) },
      },
      { echo: true },
    );
    undo.push(() => deleteLinkIfExists(host, hostVeth));
    // BIG TCP: the bridge can take the sizes only once it has a port, so the first pod sets them.
    // Best effort: a bridge with a port of a lower ceiling refuses, and stays correct at 64 KiB.
    if (offload) {
      try {
        ensureOffload(host, bridge, offload);
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
        log.warn(
          { bridge: bridge.name, err: err.message },
          "could not raise the bridge to the pods' GSO/GRO sizes (BIG TCP)",
        );
      }
    }
    writeSysctlIfPresent(interfaceSysctl('ipv6', hostVeth, 'accept_ra'), 0);
    if (cfg.hairpinMode || cfg.portIsolation) {
      setBridgePort(host, made?.index ?? hostVeth, {
        ...(cfg.hairpinMode ? { hairpin: true } : {}),
        ...(cfg.portIsolation ? { isolated: true } : {}),
      });
    }

    const podIndex = made?.parentIndex ?? findLink(pod, ifname)?.index;
    if (podIndex === undefined)
      throw new CniError(ErrorCode.KernelFailure, `container interface ${ifname} was not created in ${netns}`);
    configurePodInterface(pod, {
      netns,
      ifname,
      index: podIndex,
      ips,
      routes,
      enableDad: cfg.enableDad,
      leaveDown: cfg.disableContainerInterface,
    });

    if (cfg.isGateway) {
      ensureGatewayAddresses(host, bridge, gateways, cfg.forceAddress);
      enableForwarding(new Set(ips.map((ip) => (ipVersionOf(ip.address) === '4' ? 4 : 6))));
    }
    if (cfg.ipMasq && ips.length > 0) {
      const masq = await import('../nft/pod-masquerade.ts');
      withNft(masq, (nft) =>
        masq.addPodMasquerade(
          nft,
          cfg.net.name,
          hostVeth,
          ips.map((ip) => ip.address),
        ),
      );
      undo.push(() =>
        withNft(masq, (nft) => masq.removePodMasquerade(nft, cfg.net.name, (owner) => owner === hostVeth)),
      );
    }
    // The pod is wired: the agent's answer, waited for a bounded time (refused: undo below, code 11).
    if (announcing) {
      await announcing.finish();
      setLinkUp(host, hostVeth);
    }

    // A veth is created with MTU 1500 unless told otherwise; the bridge's follows its ports.
    const vethMtu = mtu ?? 1500;
    const interfaces: Interface[] = [
      { name: bridge.name, mac: bridge.mac ?? '' },
      { name: hostVeth, mac: hostMac, mtu: vethMtu },
      { name: ifname, mac: podMac, mtu: vethMtu, sandbox: netns },
    ];
    const result: Result = {
      interfaces,
      ips: ips.map((ip) => ({ ...ip, interface: 2 })),
      routes,
    };
    if (dns && Object.keys(dns).length > 0) result.dns = dns;
    log.info({ hostVeth, ips: ips.map((i) => i.address) }, 'ADD done');
    return result;
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (undoErr) {
        log.error({ err: undoErr }, 'undo after a failed ADD failed');
      }
    }
    log.error({ err }, 'ADD failed');
    throw asPluginError(err);
  } finally {
    host.close();
    pod.close();
  }
}

/** With isGateway the gateway goes on the bridge: from IPAM, or the subnet's first address. */
function gatewaysFor(ips: IpConfig[]): string[] {
  return ips.map((ip) => {
    ip.gateway ??= firstHost(ip.address);
    return `${ip.gateway}/${parseCidr(ip.address).prefixLength}`;
  });
}

/** isDefaultGateway: a default route per family via its gateway, unless IPAM gave one with a gw. */
function withDefaultRoutes(routes: Route[], ips: IpConfig[]): Route[] {
  const out = [...routes];
  for (const [family, gw] of familyGateways(ips)) {
    const dst = family === '4' ? '0.0.0.0/0' : '::/0';
    if (out.some((r) => r.dst === dst && r.gw)) continue;
    const i = out.findIndex((r) => r.dst === dst);
    if (i >= 0) out.splice(i, 1);
    out.push({ dst, gw });
  }
  return out;
}

// ---- DEL -----------------------------------------------------------------------------------------

async function del(inv: Invocation): Promise<void> {
  const cfg = loadPluginConfig(inv);
  const log = logger(cfg, inv);
  const { netns, ifname, containerId } = inv.env;
  const problems: CniError[] = [];
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      log.error({ err }, `DEL: ${what} failed`);
      problems.push(asPluginError(err));
    }
  };

  // DEL is best effort and idempotent (CNI 1.1 §2): a namespace or interface already gone is fine.
  // The plugin's own namespace counts as gone: CNI_IFNAME there is a host interface, never the pod's.
  const target = netns ? openDelNetns(netns) : { kind: 'gone' as const };
  if (target.kind === 'own') log.warn({ netns }, "CNI_NETNS is the plugin's own network namespace: treated as gone");
  let pairGone = false;
  if (target.kind === 'pod') {
    await attempt(`delete ${ifname} in ${netns}`, () => {
      try {
        const pod = NetlinkSocket.open({ netns: target.netns.path });
        try {
          pairGone = deleteLinkIfExists(pod, ifname);
        } finally {
          pod.close();
        }
      } finally {
        target.netns.close();
      }
    });
  }
  const hostVeth = hostVethName(cfg.net.name, containerId, ifname);
  // Deleting one end of a veth deletes its peer with it: the host end is then gone already. This
  // covers a pod namespace (or interface) that is gone, and leaves the kernel one request less
  // otherwise; a host veth whose peer vanished any other way is GC's (it sweeps by name and owner).
  if (!pairGone)
    await attempt('delete the host veth', () => {
      const host = NetlinkSocket.open();
      try {
        deleteLinkIfExists(host, hostVeth);
      } finally {
        host.close();
      }
    });
  // Found by owner, not IP: works without the pod's namespace or prevResult. Only with ipMasq (the
  // config does not change between ADD and DEL, CNI 1.1 §3); GC sweeps whatever a change left.
  if (cfg.ipMasq) {
    const masq = await import('../nft/pod-masquerade.ts');
    await attempt('remove the masquerade of the pod', () =>
      withNft(masq, (nft) => masq.removePodMasquerade(nft, cfg.net.name, (owner) => owner === hostVeth)),
    );
  }
  if (cfg.ipamType) {
    const ipamType = cfg.ipamType;
    await attempt(`IPAM ${ipamType} DEL`, () => runIpam(ipamType, 'DEL', inv));
  }
  if (problems.length > 0) {
    const first = problems[0] as CniError;
    throw new CniError(first.code, problems.map((p) => p.message).join('; '));
  }
  log.info('DEL done');
}

// ---- CHECK ---------------------------------------------------------------------------------------

async function check(inv: Invocation): Promise<void> {
  const cfg = loadPluginConfig(inv);
  const prev = inv.conf.prevResult;
  if (!prev) throw new CniError(ErrorCode.InvalidNetworkConfig, 'Required prevResult missing');
  const { netns, ifname } = inv.env;
  checkPodNetns(netns);
  if (cfg.ipamType) await runIpam(cfg.ipamType, 'CHECK', inv);

  const failed = (msg: string): never => {
    throw new CniError(ErrorCode.CheckFailed, msg);
  };
  const interfaces = prev.interfaces ?? [];
  const wantBridge = interfaces.find((i) => i.name === cfg.bridge && !i.sandbox);
  const wantPod = interfaces.find((i) => i.name === ifname && i.sandbox === netns);
  if (!wantPod) failed(`prevResult has no interface ${ifname} in ${netns}`);

  const host = NetlinkSocket.open();
  const pod = NetlinkSocket.open({ netns });
  try {
    const bridge = findLink(host, cfg.bridge);
    if (!bridge) return failed(`CNI created bridge ${cfg.bridge} was not found`);
    if (bridge.kind !== 'bridge') failed(`${cfg.bridge} is not a bridge`);
    if (wantBridge?.mac && bridge.mac !== wantBridge.mac)
      failed(`bridge ${cfg.bridge} has MAC ${bridge.mac}, not ${wantBridge.mac}`);
    if (bridge.promisc !== cfg.promiscMode)
      failed(
        `bridge ${cfg.bridge} promiscuous mode is ${bridge.promisc ? 'on' : 'off'}, config says ${cfg.promiscMode ? 'on' : 'off'}`,
      );

    const podLink = findLink(pod, ifname);
    if (!podLink) return failed(`CNI created interface in container ${ifname} not found in ${netns}`);
    if (podLink.kind !== 'veth') failed(`interface ${ifname} in ${netns} is a ${podLink.kind ?? 'device'}, not a veth`);
    if (wantPod?.mac && podLink.mac !== wantPod.mac)
      failed(`interface ${ifname} has MAC ${podLink.mac}, not ${wantPod.mac}`);

    const hostVeth = findHostPeer(host, podLink);
    if (!hostVeth) return failed(`CNI veth created for bridge ${cfg.bridge} was not found`);
    if (hostVeth.master !== bridge.index) failed(`host veth ${hostVeth.name} is not attached to bridge ${cfg.bridge}`);
    const wantHost = interfaces.find((i) => i.name === hostVeth.name && !i.sandbox);
    if (wantHost?.mac && hostVeth.mac !== wantHost.mac)
      failed(`host veth ${hostVeth.name} has MAC ${hostVeth.mac}, not ${wantHost.mac}`);

    const podIndexInPrev = interfaces.indexOf(wantPod as Interface);
    const have = new Set(listAddresses(pod, { link: podLink.index }).map((a) => a.cidr));
    for (const ip of prev.ips ?? []) {
      if (ip.interface !== undefined && ip.interface !== podIndexInPrev) continue;
      if (!have.has(normaliseCidr(ip.address))) failed(`address ${ip.address} is missing from ${ifname} in ${netns}`);
    }
    const gateways = familyGateways(prev.ips ?? []);
    const routes = [...listRoutes(pod, { family: 4, table: 'all' }), ...listRoutes(pod, { family: 6, table: 'all' })];
    for (const r of prev.routes ?? []) {
      const want = routeSpec(r, podLink.index, gateways);
      const dst = normaliseCidr(r.dst);
      const found = routes.some((k) => k.dst === dst && (want.gateway === undefined || k.gateway === want.gateway));
      if (!found) failed(`route ${r.dst}${want.gateway ? ` via ${want.gateway}` : ''} is missing in ${netns}`);
    }
  } finally {
    host.close();
    pod.close();
  }
}

/** The host end of a pod's veth: the host link whose index is the pod end's peer. */
function findHostPeer(host: NetlinkSocket, podLink: Link): Link | undefined {
  if (podLink.parentIndex === undefined) return undefined;
  const link = findLink(host, podLink.parentIndex);
  return link?.kind === 'veth' ? link : undefined;
}

function normaliseCidr(cidr: string): string {
  const c = parseCidr(cidr);
  return `${formatIp(c.bytes)}/${c.prefixLength}`;
}

// ---- GC ------------------------------------------------------------------------------------------

/**
 * GC (CNI 1.1): the attachments of this network that are not in the valid list lose their host veth
 * and their addresses. Which attachments this network has comes from IPAM; IPAM's own GC then
 * releases their addresses (forwarded to a delegated IPAM plugin as the spec requires).
 */
async function gc(inv: Invocation): Promise<void> {
  const cfg = loadPluginConfig(inv);
  const log = logger(cfg, inv);
  const valid = new Set((inv.conf.validAttachments ?? []).map(attachmentKey));
  const stale = cfg.ipamType === IN_PROCESS_IPAM ? staleAttachments(inv, valid) : [];
  const host = NetlinkSocket.open();
  try {
    for (const a of stale) {
      const name = hostVethName(cfg.net.name, a.containerID, a.ifname);
      if (deleteLinkIfExists(host, name)) log.info({ hostVeth: name, attachment: a }, 'GC removed a host veth');
    }
  } finally {
    host.close();
  }
  const validOwners = new Set(
    (inv.conf.validAttachments ?? []).map((a) => hostVethName(cfg.net.name, a.containerID, a.ifname)),
  );
  const masq = await import('../nft/pod-masquerade.ts');
  const removed = withNft(masq, (nft) =>
    masq.removePodMasquerade(nft, cfg.net.name, (owner) => !validOwners.has(owner)),
  );
  if (removed > 0) log.info({ removed }, 'GC removed masquerade entries');
  if (cfg.ipamType) await runIpam(cfg.ipamType, 'GC', inv);
}

function attachmentKey(a: Attachment): string {
  return `${a.containerID}\n${a.ifname}`;
}

/** Attachments of this network that strand-ipam holds addresses for and the runtime no longer knows. */
function staleAttachments(inv: Invocation, valid: Set<string>): Attachment[] {
  const conf = loadIpamConfig(inv.raw, inv.conf.name, inv.env.args);
  const out: Attachment[] = [];
  for (const r of readReservations(storeDir(conf.dataDir, conf.network))) {
    if (r.ifname === undefined) continue;
    const a = { containerID: r.containerID, ifname: r.ifname };
    if (!valid.has(attachmentKey(a))) out.push(a);
  }
  return out;
}

// ---- STATUS --------------------------------------------------------------------------------------

/** STATUS (CNI 1.1): not ready (50) when an ADD could not succeed: bridge unusable, IPAM unable. */
async function status(inv: Invocation): Promise<void> {
  const cfg = loadPluginConfig(inv);
  const host = NetlinkSocket.open();
  try {
    const bridge = findLink(host, cfg.bridge);
    if (bridge && bridge.kind !== 'bridge') {
      throw new CniError(
        ErrorCode.PluginNotAvailable,
        `"${cfg.bridge}" exists but is not a bridge: no pod can be attached`,
      );
    }
  } finally {
    host.close();
  }
  if (cfg.ipamType) await runIpam(cfg.ipamType, 'STATUS', inv);
  // A configured agent that is not ready: not available. No agent listening is fine (standalone).
  if (cfg.agentSocket) await checkAgentReady(cfg.agentSocket, cfg.agentWaitMs);
}

// ---- shared --------------------------------------------------------------------------------------

function logger(cfg: PluginConfig, inv: Invocation): EventLog {
  return eventLog(cfg.logFile, cfg.logLevel, {
    plugin: 'strand',
    verb: inv.env.command,
    network: cfg.net.name,
    containerId: inv.env.containerId,
    ifname: inv.env.ifname,
  });
}

/**
 * The pod MTU and GSO/GRO sizes the agent computed for this node's backend and underlay, when
 * there is node state; without an agent, the kernel's defaults.
 */
function nodeLinkSettings(cfg: PluginConfig): { mtu?: number; podOffload?: OffloadSizes; state?: NodeState } {
  try {
    const state = readNodeState(cfg.stateDir);
    return { mtu: state.mtu || undefined, podOffload: state.podOffload, state };
  } catch {
    return {};
  }
}

/** The nftables code loads only for ipMasq (and GC): most networks never pay for it. */
function withNft<T>(masq: typeof import('../nft/pod-masquerade.ts'), fn: (nft: NetlinkSocket) => T): T {
  const nft = masq.openNftSocket();
  try {
    return fn(nft);
  } finally {
    nft.close();
  }
}

function asPluginError(err: unknown): CniError {
  if (err instanceof KernelError) return new CniError(ErrorCode.KernelFailure, err.message, undefined, { cause: err });
  return asCniError(err);
}

export const strandPlugin: CniPlugin = {
  add,
  del,
  check,
  gc,
  status,
};
