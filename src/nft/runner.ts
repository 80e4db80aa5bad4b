// Over 400 lines: every Transaction verb and read of the transport contract over the nft process.
// The real Nft client: a transaction is piped to one `nft -f -` process, which nft applies as one
// netlink batch, all of it or none of it; the table is read with `nft -j list table`. Optionally
// inside a named network namespace (`ip netns exec <ns> nft …`), which is how the tests and the
// simulated cluster run several "nodes" on one machine.
//
// Only the agent uses this module (it is not on the pod start path, so a process per transaction is
// fine); the CNI plugin keeps its few objects over netlink in process (pod-masquerade.ts).
import { spawn } from 'node:child_process';
import {
  emptyTableState,
  STRAND_TABLE,
  checkTableRef,
  type BaseChainSpec,
  type ChainState,
  type ElementState,
  type Hook,
  type ChainType,
  type MapState,
  type RuleState,
  type SetFlag,
  type SetState,
  type TableRef,
  type TableState,
} from './objects.ts';
import { parseRuleJson } from './expr-json.ts';
import { NftError, type NftErrorReason } from './errors.ts';
import { describeTransaction, type Transaction } from './transaction.ts';
import type { ListOnly, NftTransport, RuleCounter, TableSummary } from './transport.ts';

export interface NftRunnerOptions {
  table?: TableRef;
  /** A network namespace name under /run/netns: nft then runs through `ip netns exec`. */
  netns?: string;
  /** Default "nft", looked up on PATH (with /usr/sbin and /sbin added). */
  nftPath?: string;
  /** Default "ip". */
  ipPath?: string;
  /** How long one nft run may take before it is killed; default 30 s. */
  timeoutMs?: number;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const SBIN_PATH = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function childEnv(): NodeJS.ProcessEnv {
  const path = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const p of SBIN_PATH) if (!path.includes(p)) path.push(p);
  // LC_ALL=C: nft's messages (and strerror texts) in English, which reasonOf reads.
  return { ...process.env, PATH: path.join(':'), LC_ALL: 'C' };
}

/** Maps nft's message to a reason; nft prints the kernel's strerror text after "Error: ". */
export function reasonOf(stderr: string): NftErrorReason {
  if (/syntax error/.test(stderr)) return 'syntax';
  // "Could not process rule: No such file or directory" (kernel), "element does not exist" (nft).
  if (/No such file or directory|does not exist/.test(stderr)) return 'not-found';
  if (/File exists/.test(stderr)) return 'exists';
  if (/Device or resource busy/.test(stderr)) return 'busy';
  if (/Operation not supported/.test(stderr)) return 'unsupported';
  if (/Invalid argument|overlaps|conflicting|out of range|too large|too long|Could not resolve/i.test(stderr))
    return 'invalid';
  return 'failed';
}

/**
 * The first error nft reports about the script, as `/dev/stdin:LINE:COL-COL: Error: …` (nft 1.0.6 with
 * `-f -`), followed by the offending line and a caret line.
 */
export function parseNftStderr(stderr: string): { line?: number; detail: string } {
  const located = /^[^\n:]*:(\d+):\d+(?:-\d+)?: Error: (.*)$/m.exec(stderr);
  if (located) return { line: Number(located[1]), detail: (located[2] ?? '').trim() };
  const plain = /^Error: (.*)$/m.exec(stderr);
  if (plain) return { detail: (plain[1] ?? '').trim() };
  const first = stderr.split('\n').find((l) => l.trim() !== '');
  return { detail: first?.trim() ?? 'no message' };
}

/** Creates the `nft` process transport. */
export function createNftRunner(options: NftRunnerOptions = {}): NftTransport {
  const table = options.table ?? STRAND_TABLE;
  checkTableRef(table);
  const nft = options.nftPath ?? 'nft';
  const ip = options.ipPath ?? 'ip';
  const timeoutMs = options.timeoutMs ?? 30_000;
  const netns = options.netns;
  if (netns !== undefined && !/^[A-Za-z0-9_.-]+$/.test(netns))
    throw new TypeError(`invalid network namespace name ${JSON.stringify(netns)}`);

  /** ip netns exec fails before nft runs when the namespace is gone: that is not nft's answer. */
  function failureReason(stderr: string): NftErrorReason {
    return netns !== undefined && /Cannot open network namespace|exec of .* failed/.test(stderr)
      ? 'unavailable'
      : reasonOf(stderr);
  }

  function exec(args: string[], input: string): Promise<RunResult> {
    const [cmd, argv] = netns === undefined ? [nft, args] : [ip, ['netns', 'exec', netns, nft, ...args]];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, argv, {
        env: childEnv(),
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => (timedOut = true), timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      // nft may exit before reading all of its input (a syntax error early on): ignore EPIPE here,
      // the exit status tells what happened.
      child.stdin.on('error', () => {});
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut: timedOut || (code === null && signal === 'SIGKILL'),
        });
      });
      child.stdin.end(input);
    });
  }

  async function apply(tx: Transaction, checkOnly: boolean): Promise<void> {
    if (tx.empty) return;
    const script = tx.render(table);
    const operation = describeTransaction(tx, table, checkOnly ? 'check' : 'apply');
    let r: RunResult;
    try {
      r = await exec(checkOnly ? ['--check', '-f', '-'] : ['-f', '-'], script);
    } catch (cause) {
      throw new NftError({
        reason: 'unavailable',
        operation,
        detail: `cannot run ${netns === undefined ? nft : ip}: ${(cause as Error).message}`,
        netns,
        script,
        cause,
      });
    }
    if (r.code === 0) return;
    if (r.timedOut)
      throw new NftError({
        reason: 'timeout',
        operation,
        detail: `nft did not finish within ${timeoutMs} ms and was killed`,
        netns,
        script,
        stderr: r.stderr,
      });
    const { line, detail } = parseNftStderr(r.stderr);
    const failingCommand = line !== undefined ? script.split('\n')[line - 1] : undefined;
    throw new NftError({
      reason: failureReason(r.stderr),
      operation,
      detail: detail || `nft exited with ${r.code ?? r.signal}`,
      netns,
      script,
      stderr: r.stderr,
      ...(line !== undefined ? { line } : {}),
      ...(failingCommand !== undefined ? { failingCommand } : {}),
    });
  }

  async function list(only?: ListOnly): Promise<TableState> {
    if (only) return listOnly(only);
    const operation = `list table ${table.family} ${table.name}`;
    let r: RunResult;
    try {
      r = await exec(['-j', 'list', 'table', table.family, table.name], '');
    } catch (cause) {
      throw new NftError({
        reason: 'unavailable',
        operation,
        detail: `cannot run ${netns === undefined ? nft : ip}: ${(cause as Error).message}`,
        netns,
        cause,
      });
    }
    if (r.code !== 0) {
      if (r.timedOut)
        throw new NftError({
          reason: 'timeout',
          operation,
          detail: `nft did not finish within ${timeoutMs} ms and was killed`,
          netns,
          stderr: r.stderr,
        });
      // No table yet: nothing of ours (or anyone's) is there. nft names the command it could not run;
      // a missing namespace (ip's "Cannot open network namespace … No such file") is not that.
      if (/^Error: No such file or directory/m.test(r.stderr) && /^list table /m.test(r.stderr))
        return emptyTableState();
      throw new NftError({
        reason: failureReason(r.stderr),
        operation,
        detail: parseNftStderr(r.stderr).detail,
        netns,
        stderr: r.stderr,
      });
    }
    try {
      return parseListJson(r.stdout, table);
    } catch (cause) {
      throw new NftError({
        reason: 'failed',
        operation,
        detail: `cannot read nft's JSON: ${(cause as Error).message}`,
        netns,
        cause,
      });
    }
  }

  /** `nft -j <args>`; undefined when nft says the object does not exist. */
  async function listJson(args: string[]): Promise<string | undefined> {
    const operation = args.join(' ');
    let r: RunResult;
    try {
      r = await exec(['-j', ...args], '');
    } catch (cause) {
      throw new NftError({
        reason: 'unavailable',
        operation,
        detail: `cannot run ${netns === undefined ? nft : ip}: ${(cause as Error).message}`,
        netns,
        cause,
      });
    }
    if (r.code === 0) return r.stdout;
    if (r.timedOut)
      throw new NftError({
        reason: 'timeout',
        operation,
        detail: `nft did not finish within ${timeoutMs} ms and was killed`,
        netns,
        stderr: r.stderr,
      });
    if (/^Error: No such file or directory/m.test(r.stderr) && /^list /m.test(r.stderr)) return undefined;
    throw new NftError({
      reason: failureReason(r.stderr),
      operation,
      detail: parseNftStderr(r.stderr).detail,
      netns,
      stderr: r.stderr,
    });
  }

  /** The objects named, each listed by itself (a missing one is left out), merged into one state. */
  async function listOnly(only: ListOnly): Promise<TableState> {
    const chains = only.chains ?? [];
    const sets = only.sets ?? [];
    // `list set` names sets only; a map is listed with `list map`. Which one a name is, is not known
    // here: both are tried (a missing one costs an nft start of a few ms).
    const texts = await Promise.all([
      listJson(['list', 'chains', table.family]),
      ...chains.map((c) => listJson(['list', 'chain', table.family, table.name, c])),
      ...sets.flatMap((s) => [
        listJson(['list', 'set', table.family, table.name, s]),
        listJson(['list', 'map', table.family, table.name, s]),
      ]),
    ]);
    const state = emptyTableState();
    try {
      const [chainList, ...rest] = texts;
      const listedChains = parseListJson(chainList ?? '{"nftables":[]}', table);
      state.exists = listedChains.chains.size > 0 || rest.some((t) => t !== undefined);
      for (const text of rest) {
        if (text === undefined) continue;
        const part = parseListJson(text, table);
        for (const [k, v] of part.chains) if (chains.includes(k)) state.chains.set(k, v);
        for (const [k, v] of part.sets) if (sets.includes(k)) state.sets.set(k, v);
        for (const [k, v] of part.maps) if (sets.includes(k)) state.maps.set(k, v);
      }
    } catch (cause) {
      throw new NftError({
        reason: 'failed',
        operation: `list objects of table ${table.family} ${table.name}`,
        detail: `cannot read nft's JSON: ${(cause as Error).message}`,
        netns,
        cause,
      });
    }
    if (!state.exists) {
      // No chain anywhere in the family and none of the objects: is there an empty table?
      const t = await listJson(['list', 'table', table.family, table.name]);
      state.exists = t !== undefined;
    }
    return state;
  }

  async function summary(chains: readonly string[]): Promise<TableSummary> {
    // `list chains <family>` is every table's chains of the family without their rules, far cheaper
    // than `list table` with all their rules (bench/nft-read.mjs).
    const [chainsText, ...ruleTexts] = await Promise.all([
      listJson(['list', 'chains', table.family]),
      ...chains.map((c) => listJson(['list', 'chain', table.family, table.name, c])),
    ]);
    const out: TableSummary = { exists: false, chains: new Map(), rules: new Map() };
    try {
      const listed = parseListJson(chainsText ?? '{"nftables":[]}', table);
      for (const c of listed.chains.values()) out.chains.set(c.name, c.handle);
      chains.forEach((name, i) => {
        const text = ruleTexts[i];
        if (text === undefined) return;
        const c = parseListJson(text, table).chains.get(name);
        if (c)
          out.rules.set(
            name,
            c.rules.map((r) => r.comment ?? ''),
          );
      });
    } catch (cause) {
      throw new NftError({
        reason: 'failed',
        operation: `list the chains of table ${table.family} ${table.name}`,
        detail: `cannot read nft's JSON: ${(cause as Error).message}`,
        netns,
        cause,
      });
    }
    // A table without chains shows in no listing: such a table holds no rule to lose.
    out.exists = out.chains.size > 0;
    return out;
  }

  async function counters(chains?: readonly string[]): Promise<RuleCounter[]> {
    // nft's JSON has each counter's packets and bytes; the parse into RuleState.counter is expr-json's.
    const state = await list(chains ? { chains } : undefined);
    return countersOf(state);
  }

  return { table, run: (tx) => apply(tx, false), check: (tx) => apply(tx, true), list, summary, counters };
}

/** The counters of a listed state's rules, in chain order. */
export function countersOf(state: TableState): RuleCounter[] {
  const out: RuleCounter[] = [];
  for (const c of state.chains.values()) {
    for (const r of c.rules) {
      if (!r.counter) continue;
      out.push({
        chain: r.chain,
        handle: r.handle,
        ...(r.comment !== undefined ? { comment: r.comment } : {}),
        ...r.counter,
      });
    }
  }
  return out;
}

// ---- `nft -j list table` (JSON schema version 1, libnftables-json(5)) → TableState ----

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const VERDICTS = ['accept', 'drop', 'continue', 'return'];

/** One element key or value part as nft's text syntax writes it. */
function formatValue(v: Json): string[] {
  if (typeof v === 'string') return [v];
  if (typeof v === 'number') return [String(v)];
  if (isObject(v)) {
    const [k, body] = Object.entries(v)[0] ?? [];
    if (k === 'prefix' && isObject(body)) return [`${String(body.addr)}/${String(body.len)}`];
    if (k === 'range' && Array.isArray(body))
      return [`${formatValue(body[0] ?? null).join('')}-${formatValue(body[1] ?? null).join('')}`];
    if (k === 'concat' && Array.isArray(body)) return body.flatMap(formatValue);
    if ((k === 'jump' || k === 'goto') && isObject(body)) return [`${k} ${String(body.target)}`];
    if (k !== undefined && VERDICTS.includes(k)) return [k];
  }
  // Anything else is kept as its JSON text: it compares unequal to what callers render, so a diff
  // replaces it rather than misreading it.
  return [JSON.stringify(v)];
}

function parseElement(raw: Json, isMap: boolean): ElementState {
  let keyRaw: Json = raw;
  let value: Json | undefined;
  if (isMap && Array.isArray(raw)) {
    keyRaw = raw[0] ?? null;
    value = raw[1] ?? null;
  }
  let comment: string | undefined;
  // {"elem": {"val": …, "comment": …, "timeout": …}} wraps a key that carries options.
  if (isObject(keyRaw) && isObject(keyRaw.elem)) {
    const e = keyRaw.elem;
    if (typeof e.comment === 'string') comment = e.comment;
    keyRaw = e.val ?? null;
  }
  const el: ElementState = { key: formatValue(keyRaw) };
  if (value !== undefined) el.value = formatValue(value);
  if (comment !== undefined) el.comment = comment;
  return el;
}

function typeText(t: Json | undefined): string {
  return Array.isArray(t) ? t.map(String).join(' . ') : String(t);
}

export function parseListJson(text: string, table: TableRef = STRAND_TABLE): TableState {
  const doc: unknown = JSON.parse(text);
  if (!isObject(doc) || !Array.isArray(doc.nftables)) throw new Error('no "nftables" array');
  const state = emptyTableState();
  const mine = (o: { [k: string]: Json }) => o.family === table.family && o.table === table.name;
  const rules: RuleState[] = [];
  for (const item of doc.nftables) {
    if (!isObject(item)) continue;
    if (isObject(item.metainfo) && item.metainfo.json_schema_version !== 1)
      throw new Error(`unsupported JSON schema version ${String(item.metainfo.json_schema_version)}`);
    if (isObject(item.table) && item.table.family === table.family && item.table.name === table.name)
      state.exists = true;
    if (isObject(item.chain) && mine(item.chain)) {
      const c = item.chain;
      const chain: ChainState = { name: String(c.name), handle: Number(c.handle), rules: [] };
      if (typeof c.hook === 'string') {
        const base: BaseChainSpec = {
          type: String(c.type) as ChainType,
          hook: c.hook as Hook,
          priority: Number(c.prio),
        };
        if (c.policy === 'accept' || c.policy === 'drop') base.policy = c.policy;
        chain.base = base;
      }
      state.chains.set(chain.name, chain);
    }
    for (const kind of ['set', 'map'] as const) {
      const s = item[kind];
      if (!isObject(s) || !mine(s)) continue;
      const set: SetState = {
        name: String(s.name),
        handle: Number(s.handle),
        type: typeText(s.type),
        flags: Array.isArray(s.flags) ? (s.flags.map(String) as SetFlag[]) : [],
        elements: Array.isArray(s.elem) ? s.elem.map((e) => parseElement(e, kind === 'map')) : [],
      };
      if (typeof s.comment === 'string') set.comment = s.comment;
      if (kind === 'map') state.maps.set(set.name, { ...set, value: typeText(s.map) } satisfies MapState);
      else state.sets.set(set.name, set);
    }
    if (isObject(item.rule) && mine(item.rule)) {
      const r = item.rule;
      const { body, counter } = parseRuleJson(r.expr);
      rules.push({
        chain: String(r.chain),
        handle: Number(r.handle),
        ...(typeof r.comment === 'string' ? { comment: r.comment } : {}),
        ...(body ? { body } : {}),
        ...(counter ? { counter } : {}),
        expr: r.expr,
      });
    }
  }
  // nft lists a chain's rules after the chain, in chain order.
  for (const r of rules) state.chains.get(r.chain)?.rules.push(r);
  return state;
}
