// Traffic between the simulator's namespaces: ping, "who am I to you" over TCP (the server side is
// pod-server.mjs, started with SimCluster.serve), and a bulk TCP transfer. Every probe runs its
// client with `ip netns exec`, so it leaves from the pod's own network stack.
import { POD_PORT } from './cluster.ts';
import { run } from './exec.ts';

export interface PingResult {
  ok: boolean;
  /** Average round-trip time in ms, when any reply came. */
  rttMs?: number;
  output: string;
}

/** ICMP echo from a namespace: `count` probes, each waiting up to `waitS` seconds. */
export async function ping(
  netns: string,
  address: string,
  opts: { count?: number; waitS?: number; intervalS?: number } = {},
): Promise<PingResult> {
  const args = [
    'netns',
    'exec',
    netns,
    'ping',
    '-n',
    '-q',
    '-c',
    String(opts.count ?? 1),
    '-W',
    String(opts.waitS ?? 2),
  ];
  if (opts.intervalS !== undefined) args.push('-i', String(opts.intervalS));
  const r = await run('ip', [...args, address], { timeoutMs: 30_000 });
  const m = r.stdout.match(/= [\d.]+\/([\d.]+)\//);
  const out: PingResult = { ok: r.code === 0, output: (r.stdout + r.stderr).trim() };
  if (m) out.rttMs = Number(m[1]);
  return out;
}

/**
 * Connects over TCP from `netns` to address:port and returns the source address the server saw
 * (pod-server.mjs's first line), or undefined when the connection failed within `timeoutS`.
 */
export async function tcpWhoami(
  netns: string,
  address: string,
  port = POD_PORT,
  timeoutS = 4,
): Promise<string | undefined> {
  // bash's /dev/tcp: no process start cost beyond bash itself; `timeout` bounds the SYN retries.
  const script = 'exec 3<>"/dev/tcp/$0/$1" && head -n1 <&3';
  const r = await run(
    'ip',
    ['netns', 'exec', netns, 'timeout', String(timeoutS), 'bash', '-c', script, address, String(port)],
    { timeoutMs: (timeoutS + 5) * 1000 },
  );
  const line = r.stdout.trim();
  return r.code === 0 && line !== '' ? line : undefined;
}

export interface TransferResult {
  ok: boolean;
  /** Bytes the server says it received. */
  received: number;
  seconds: number;
  /** The source address the server saw. */
  seenAs: string | undefined;
  error?: string;
}

/**
 * Sends `bytes` of zeros from `netns` to address:port over one TCP connection, half-closes, and reads
 * the server's count: ok when every byte arrived.
 */
export async function tcpTransfer(
  netns: string,
  address: string,
  bytes: number,
  port = POD_PORT,
  timeoutS = 30,
): Promise<TransferResult> {
  const started = process.hrtime.bigint();
  // nc -N: shut the sending side down at the end of stdin, then read until the server closes.
  const script = 'head -c "$2" /dev/zero | nc -N -w 10 "$0" "$1"';
  const r = await run(
    'ip',
    ['netns', 'exec', netns, 'timeout', String(timeoutS), 'bash', '-c', script, address, String(port), String(bytes)],
    { timeoutMs: (timeoutS + 5) * 1000 },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const [seenAs, count] = r.stdout.trim().split('\n');
  const received = Number(count ?? NaN);
  const ok = r.code === 0 && received === bytes;
  const result: TransferResult = { ok, received: Number.isFinite(received) ? received : 0, seconds, seenAs };
  if (!ok) result.error = `exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 300)}`;
  return result;
}

/** Runs `fn` over `items` with at most `limit` at a time (probes are processes: the machine is small). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return out;
}
