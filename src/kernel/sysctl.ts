// Sysctls are files under /proc/sys. Those under /proc/sys/net belong to the network namespace of
// the thread that opens them (proc_sys looks the table up in current's netns), so a pod's settings are
// read and written inside withNetns; the `netns` option does exactly that.
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { fromSystemError } from './errors.ts';
import { withNetns, type NotPromise } from './netns.ts';

export interface SysctlOptions {
  /** Read or write it inside this network namespace. */
  netns?: string;
}

/**
 * The /proc/sys path of a key. A dotted key ("net.ipv4.ip_forward") has its dots turned into
 * slashes; a key with slashes ("net/ipv4/conf/eth0.100/rp_filter") is taken as a path already, which
 * is how to name an interface whose name has a dot in it (as sysctl(8) does).
 */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key.replace(/^\/+/, '') : key.replace(/\./g, '/');
  if (rel.split('/').some((p) => p === '' || p === '.' || p === '..'))
    throw new TypeError(`invalid sysctl key ${JSON.stringify(key)}`);
  return `/proc/sys/${rel}`;
}

/** The key of a per-interface setting, safe for names with dots: "net/ipv6/conf/eth0/accept_ra". */
export function interfaceSysctl(family: 'ipv4' | 'ipv6', ifname: string, setting: string): string {
  return `net/${family}/conf/${ifname}/${setting}`;
}

function describe(key: string): string {
  return key.includes('/') ? key.replace(/^\/+/, '').replace(/\//g, '.') : key;
}

function inNetns<T extends NotPromise>(opts: SysctlOptions, fn: () => T): T {
  return opts.netns === undefined ? fn() : withNetns(opts.netns, fn);
}

/** The value with its trailing newline removed. */
export function readSysctl(key: string, opts: SysctlOptions = {}): string {
  const path = sysctlPath(key);
  return inNetns(opts, () => {
    try {
      return readFileSync(path, 'utf8').replace(/\n$/, '');
    } catch (err) {
      throw fromSystemError(err, `read sysctl ${describe(key)}`, opts.netns);
    }
  });
}

function writeHere(key: string, value: string | number, netns: string | undefined): void {
  const path = sysctlPath(key);
  let fd: number | undefined;
  try {
    // No O_CREAT or O_TRUNC: the file must exist, and proc's sysctl handlers take one write.
    fd = openSync(path, constants.O_WRONLY);
    writeSync(fd, String(value));
  } catch (err) {
    throw fromSystemError(err, `write sysctl ${describe(key)}=${value}`, netns);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeSysctl(key: string, value: string | number, opts: SysctlOptions = {}): void {
  inNetns(opts, () => writeHere(key, value, opts.netns));
}

/** Writes several sysctls with one namespace switch, in order. */
export function writeSysctls(values: Record<string, string | number>, opts: SysctlOptions = {}): void {
  inNetns(opts, () => {
    for (const [key, value] of Object.entries(values)) writeHere(key, value, opts.netns);
  });
}

/**
 * Writes a sysctl only when it holds another value; returns whether it wrote. A write is not free
 * even when it changes nothing: net.ipv4.ip_forward's handler walks every device of the namespace
 * under RTNL (devinet_sysctl_forward, inet_forward_change), which every pod start would pay for.
 */
export function ensureSysctl(key: string, value: string | number, opts: SysctlOptions = {}): boolean {
  if (readSysctl(key, opts) === String(value)) return false;
  writeSysctl(key, value, opts);
  return true;
}
