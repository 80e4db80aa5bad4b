// nf_tables writes over netlink judged by nft itself: every construct is written over netlink into one
// test namespace and as text with `nft -f` into another, and `nft -j list table` of both must be equal
// (handles aside). Then: a batch with one bad operation applies nothing and names that operation; real
// packets bump a rule's counter; and a 10,000-rule / 1,000-set batch is timed against `nft -f`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NetlinkSocket } from '../../src/kernel/index.ts';
import { NETLINK_NETFILTER } from '../../src/kernel/netlink-const.ts';
import { applyBatch, NftBatchError, type NftOp } from '../../src/nft/netlink/batch.ts';
import type { SetSpec } from '../../src/nft/netlink/messages.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { sh } from '../support/sh.ts';

const dir = mkdtempSync(join(tmpdir(), 'strand-nftnl-'));
const made: TestNetns[] = [];
const sockets: NetlinkSocket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  for (const ns of made.splice(0)) ns.destroy();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function netns(): TestNetns {
  const ns = TestNetns.create('nfnl');
  made.push(ns);
  return ns;
}

function socketIn(ns: TestNetns): NetlinkSocket {
  const nl = NetlinkSocket.open({ netns: ns.path, protocol: NETLINK_NETFILTER });
  sockets.push(nl);
  return nl;
}

function nftFile(ns: TestNetns, text: string): void {
  const file = join(dir, `${testName('f')}.nft`);
  writeFileSync(file, text);
  ns.exec('nft', ['-f', file]);
}

/** `nft -j list table`, without handles (they number objects per namespace, not by content). */
function listed(ns: TestNetns, table = 't'): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => k !== 'handle')
          .map(([k, x]) => [k, strip(x)]),
      );
    }
    return v;
  };
  // A 10,000-rule table lists as several MB of JSON: more than sh()'s default output buffer.
  const text = execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-j', 'list', 'table', 'inet', table], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const out = JSON.parse(text) as { nftables: Array<Record<string, unknown>> };
  return strip(out.nftables.filter((o) => !('metainfo' in o)));
}

const T = { table: 't' } as const;
const s4: SetSpec = { ...T, name: 's4', key: ['ipv4_addr'] };
const s46: SetSpec = { ...T, name: 's46', key: ['ipv4_addr', 'inet_service'], flags: ['interval'] };
const iv: SetSpec = { ...T, name: 'iv', key: ['ipv4_addr'], flags: ['interval'] };
const vm: SetSpec = { ...T, name: 'vm', key: ['ipv4_addr'], verdictMap: true };
const tm: SetSpec = { ...T, name: 'tm', key: ['ipv6_addr'], flags: ['timeout'], timeoutMs: 3_600_000 };
const cp: SetSpec = { ...T, name: 'cp', key: ['ipv4_addr', 'inet_proto', 'inet_service'] };
const cv: SetSpec = { ...T, name: 'cv', key: ['ipv6_addr', 'inet_service'], verdictMap: true };

interface Case {
  name: string;
  ops: NftOp[];
  nft: string;
}

const head: NftOp[] = [
  { op: 'add-table', ...T },
  { op: 'add-chain', ...T, name: 'c' },
  {
    op: 'add-chain',
    ...T,
    name: 'base',
    base: { type: 'filter', hook: 'forward', priority: 'filter', policy: 'drop' },
  },
];
const headText =
  'add table inet t\nadd chain inet t c\nadd chain inet t base { type filter hook forward priority filter; policy drop; }\n';

const cases: Case[] = [
  {
    name: 'set lookup, counter, verdict, rule comment, element comment',
    ops: [
      ...head,
      { op: 'add-set', set: s4 },
      { op: 'add-elements', set: s4, elements: [{ key: ['10.0.0.1'], comment: 'pod a' }, { key: ['10.0.0.2'] }] },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip saddr'], set: 's4' },
          { kind: 'counter' },
          { kind: 'verdict', verdict: { code: 'accept' } },
        ],
        comment: 'hello',
      },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip daddr'], set: 's4', not: true },
          { kind: 'verdict', verdict: { code: 'drop' } },
        ],
      },
    ],
    nft: `${headText}add set inet t s4 { type ipv4_addr; }\nadd element inet t s4 { 10.0.0.1 comment "pod a", 10.0.0.2 }
add rule inet t base ip saddr @s4 counter accept comment "hello"\nadd rule inet t base ip daddr != @s4 drop\n`,
  },
  {
    name: 'concatenated interval set lookup',
    ops: [
      ...head,
      { op: 'add-set', set: s46 },
      { op: 'add-elements', set: s46, elements: [{ key: ['10.0.0.0/8', '80-90'] }, { key: ['192.168.1.1', 443] }] },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip saddr', 'th dport'], set: 's46' },
          { kind: 'verdict', verdict: { code: 'accept' } },
        ],
      },
    ],
    nft: `${headText}add set inet t s46 { type ipv4_addr . inet_service; flags interval; }
add element inet t s46 { 10.0.0.0/8 . 80-90, 192.168.1.1 . 443 }\nadd rule inet t base ip saddr . th dport @s46 accept\n`,
  },
  {
    name: 'concatenated set of address . protocol . port',
    ops: [
      ...head,
      { op: 'add-set', set: cp },
      { op: 'add-elements', set: cp, elements: [{ key: ['10.1.1.1', 'tcp', 80] }, { key: ['10.1.1.2', 'udp', 53] }] },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip daddr', 'meta l4proto', 'th dport'], set: 'cp' },
          { kind: 'verdict', verdict: { code: 'accept' } },
        ],
      },
    ],
    nft: `${headText}add set inet t cp { type ipv4_addr . inet_proto . inet_service; }
add element inet t cp { 10.1.1.1 . tcp . 80, 10.1.1.2 . udp . 53 }\nadd rule inet t base ip daddr . meta l4proto . th dport @cp accept\n`,
  },
  {
    name: 'interval set with prefixes and comments',
    ops: [
      ...head,
      { op: 'add-set', set: iv },
      {
        op: 'add-elements',
        set: iv,
        elements: [
          { key: ['10.0.0.0/8'], comment: 'ten' },
          { key: ['192.168.1.1'] },
          { key: ['172.16.0.5-172.16.0.9'] },
        ],
      },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip daddr'], set: 'iv' },
          { kind: 'verdict', verdict: { code: 'return' } },
        ],
      },
    ],
    nft: `${headText}add set inet t iv { type ipv4_addr; flags interval; }
add element inet t iv { 10.0.0.0/8 comment "ten", 192.168.1.1, 172.16.0.5-172.16.0.9 }\nadd rule inet t base ip daddr @iv return\n`,
  },
  {
    name: 'verdict maps, single and concatenated, with jump and drop',
    ops: [
      ...head,
      { op: 'add-set', set: vm },
      { op: 'add-set', set: cv },
      {
        op: 'add-elements',
        set: vm,
        elements: [
          { key: ['10.1.1.1'], verdict: { code: 'jump', chain: 'c' } },
          { key: ['10.1.1.2'], verdict: { code: 'drop' } },
        ],
      },
      { op: 'add-elements', set: cv, elements: [{ key: ['fd00::1', 443], verdict: { code: 'goto', chain: 'c' } }] },
      { op: 'add-rule', ...T, chain: 'base', rule: [{ kind: 'vmap', fields: ['ip daddr'], map: 'vm' }] },
      { op: 'add-rule', ...T, chain: 'base', rule: [{ kind: 'vmap', fields: ['ip6 daddr', 'th dport'], map: 'cv' }] },
    ],
    nft: `${headText}add map inet t vm { type ipv4_addr : verdict; }\nadd map inet t cv { type ipv6_addr . inet_service : verdict; }
add element inet t vm { 10.1.1.1 : jump c, 10.1.1.2 : drop }\nadd element inet t cv { fd00::1 . 443 : goto c }
add rule inet t base ip daddr vmap @vm\nadd rule inet t base ip6 daddr . th dport vmap @cv\n`,
  },
  {
    name: 'ct state, l4proto and ports, prefixes, ranges, interface names, fib',
    ops: [
      ...head,
      ...(
        [
          [
            { kind: 'match', field: 'ct state', value: ['established', 'related'] },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
          [
            { kind: 'match', field: 'ct state', value: 'invalid' },
            { kind: 'verdict', verdict: { code: 'drop' } },
          ],
          [
            { kind: 'match', field: 'meta l4proto', value: 'tcp' },
            { kind: 'match', field: 'th dport', value: 80 },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
          [
            { kind: 'match', field: 'tcp dport', value: 22 },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
          [
            { kind: 'match', field: 'udp sport', value: '1000-2000' },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
          [
            { kind: 'match', field: 'ip daddr', value: '10.0.0.0/8' },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
          [
            { kind: 'match', field: 'ip daddr', value: '10.1.2.0/23' },
            { kind: 'verdict', verdict: { code: 'drop' } },
          ],
          [
            { kind: 'match', field: 'ip saddr', op: '!=', value: '10.0.0.1' },
            { kind: 'verdict', verdict: { code: 'drop' } },
          ],
          [
            { kind: 'match', field: 'ip6 saddr', value: 'fe80::/10' },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
          [
            { kind: 'match', field: 'iifname', value: 'veth*' },
            { kind: 'verdict', verdict: { code: 'goto', chain: 'c' } },
          ],
          [
            { kind: 'match', field: 'oifname', value: 'eth0' },
            { kind: 'verdict', verdict: { code: 'jump', chain: 'c' } },
          ],
          [
            { kind: 'match', field: 'fib daddr type', value: 'local' },
            { kind: 'verdict', verdict: { code: 'return' } },
          ],
          [
            { kind: 'match', field: 'meta nfproto', value: 'ipv6' },
            { kind: 'match', field: 'ip6 daddr', value: 'fd00::1' },
            { kind: 'counter' },
          ],
        ] as const
      ).map((rule): NftOp => ({ op: 'add-rule', ...T, chain: 'base', rule })),
    ],
    nft: `${headText}add rule inet t base ct state established,related accept
add rule inet t base ct state invalid drop
add rule inet t base meta l4proto tcp th dport 80 accept
add rule inet t base tcp dport 22 accept
add rule inet t base udp sport 1000-2000 accept
add rule inet t base ip daddr 10.0.0.0/8 accept
add rule inet t base ip daddr 10.1.2.0/23 drop
add rule inet t base ip saddr != 10.0.0.1 drop
add rule inet t base ip6 saddr fe80::/10 accept
add rule inet t base iifname "veth*" goto c
add rule inet t base oifname "eth0" jump c
add rule inet t base fib daddr type local return
add rule inet t base meta nfproto ipv6 ip6 daddr fd00::1 counter\n`,
  },
  {
    name: 'log with limit, masquerade, timeout set',
    ops: [
      ...head,
      { op: 'add-chain', ...T, name: 'post', base: { type: 'nat', hook: 'postrouting', priority: 'srcnat' } },
      { op: 'add-set', set: tm },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'limit', rate: 10, per: 'second', burst: 20 },
          { kind: 'log', prefix: 'x ', level: 'info' },
        ],
      },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'log', prefix: 'plain' },
          { kind: 'limit', rate: 3, per: 'minute' },
          { kind: 'verdict', verdict: { code: 'drop' } },
        ],
      },
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip6 daddr'], set: 'tm' },
          { kind: 'verdict', verdict: { code: 'drop' } },
        ],
      },
      { op: 'add-rule', ...T, chain: 'post', rule: [{ kind: 'masquerade' }] },
      {
        op: 'add-rule',
        ...T,
        chain: 'post',
        rule: [
          { kind: 'match', field: 'ip saddr', value: '10.5.0.0/16' },
          { kind: 'masquerade', fullyRandom: true },
        ],
      },
    ],
    nft: `${headText}add chain inet t post { type nat hook postrouting priority srcnat; policy accept; }
add set inet t tm { type ipv6_addr; flags timeout; timeout 1h; }
add rule inet t base limit rate 10/second burst 20 packets log prefix "x " level info
add rule inet t base log prefix "plain" limit rate 3/minute drop
add rule inet t base ip6 daddr @tm drop
add rule inet t post masquerade
add rule inet t post ip saddr 10.5.0.0/16 masquerade fully-random\n`,
  },
];

describe('nf_tables writes over netlink, judged by nft -j list', () => {
  for (const c of cases) {
    it(c.name, () => {
      const viaNetlink = netns();
      const viaNft = netns();
      applyBatch(socketIn(viaNetlink), c.ops);
      nftFile(viaNft, c.nft);
      const got = listed(viaNetlink);
      expect(JSON.stringify(got)).toContain('"rule"');
      expect(got).toEqual(listed(viaNft));
    });
  }
});

describe('batches', () => {
  it('a batch with one bad operation applies nothing and names that operation', () => {
    const ns = netns();
    const nl = socketIn(ns);
    const ops: NftOp[] = [
      ...head,
      { op: 'add-set', set: s4 },
      { op: 'add-rule', ...T, chain: 'nope', rule: [{ kind: 'counter' }] },
      { op: 'add-elements', set: s4, elements: [{ key: ['10.0.0.1'] }] },
    ];
    const err = (() => {
      try {
        applyBatch(nl, ops);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(NftBatchError);
    const e = err as NftBatchError;
    expect(e.index).toBe(4);
    expect(e.op).toBe(ops[4]);
    expect(e.code).toBe('ENOENT');
    expect(e.message).toContain('add rule to chain inet t nope (operation 5 of 6');
    expect(ns.tryExec('nft', ['list', 'table', 'inet', 't']).status).not.toBe(0);

    // On an existing table too: the set added before the failing delete is not there afterwards.
    applyBatch(nl, head);
    expect(() =>
      applyBatch(nl, [
        { op: 'add-set', set: s4 },
        { op: 'delete-chain', ...T, name: 'missing' },
      ]),
    ).toThrow(/delete chain inet t missing/);
    expect(ns.tryExec('nft', ['list', 'set', 'inet', 't', 's4']).status).not.toBe(0);
  });

  it('deletes rules by handle, elements, flushes and deletes chains and sets as nft does', () => {
    const viaNetlink = netns();
    const viaNft = netns();
    const nl = socketIn(viaNetlink);
    const rules: NftOp[] = [
      {
        op: 'add-rule',
        ...T,
        chain: 'base',
        rule: [
          { kind: 'lookup', fields: ['ip saddr'], set: 's4' },
          { kind: 'verdict', verdict: { code: 'accept' } },
        ],
      },
      { op: 'add-rule', ...T, chain: 'base', rule: [{ kind: 'verdict', verdict: { code: 'jump', chain: 'c' } }] },
      { op: 'add-rule', ...T, chain: 'base', rule: [{ kind: 'counter' }] },
    ];
    applyBatch(nl, [
      ...head,
      { op: 'add-set', set: s4 },
      { op: 'add-elements', set: s4, elements: [{ key: ['10.0.0.1'] }, { key: ['10.0.0.2'] }] },
      ...rules,
    ]);
    nftFile(
      viaNft,
      `${headText}add set inet t s4 { type ipv4_addr; }\nadd element inet t s4 { 10.0.0.1, 10.0.0.2 }
add rule inet t base ip saddr @s4 accept\nadd rule inet t base jump c\nadd rule inet t base counter\n`,
    );
    const handleOf = (ns: TestNetns, index: number): number => {
      const out = JSON.parse(ns.exec('nft', ['-a', '-j', 'list', 'chain', 'inet', 't', 'base'])) as {
        nftables: Array<{ rule?: { handle: number } }>;
      };
      return out.nftables.flatMap((o) => (o.rule ? [o.rule.handle] : []))[index] as number;
    };
    applyBatch(nl, [
      { op: 'delete-elements', set: s4, elements: [{ key: ['10.0.0.2'] }] },
      { op: 'delete-rule', ...T, chain: 'base', handle: handleOf(viaNetlink, 2) },
    ]);
    nftFile(viaNft, `delete element inet t s4 { 10.0.0.2 }\ndelete rule inet t base handle ${handleOf(viaNft, 2)}\n`);
    expect(listed(viaNetlink)).toEqual(listed(viaNft));

    applyBatch(nl, [
      { op: 'flush-chain', ...T, chain: 'base' },
      { op: 'delete-set', ...T, name: 's4' },
      { op: 'delete-chain', ...T, name: 'c' },
    ]);
    nftFile(viaNft, 'flush chain inet t base\ndelete set inet t s4\ndelete chain inet t c\n');
    expect(listed(viaNetlink)).toEqual(listed(viaNft));
  });

  it('real packets through a rule bump its counter', () => {
    const a = netns();
    const b = netns();
    const va = testName('va');
    const vb = testName('vb');
    sh('ip', ['link', 'add', va, 'netns', a.name, 'type', 'veth', 'peer', 'name', vb, 'netns', b.name]);
    a.exec('ip', ['addr', 'add', '10.199.0.1/24', 'dev', va]);
    b.exec('ip', ['addr', 'add', '10.199.0.2/24', 'dev', vb]);
    a.exec('ip', ['link', 'set', va, 'up']);
    b.exec('ip', ['link', 'set', vb, 'up']);
    applyBatch(socketIn(b), [
      { op: 'add-table', ...T },
      { op: 'add-chain', ...T, name: 'in', base: { type: 'filter', hook: 'input', priority: 0 } },
      {
        op: 'add-rule',
        ...T,
        chain: 'in',
        rule: [
          { kind: 'match', field: 'ip saddr', value: '10.199.0.1' },
          { kind: 'match', field: 'meta l4proto', value: 'icmp' },
          { kind: 'counter' },
        ],
      },
    ]);
    a.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.199.0.2']);
    const out = JSON.parse(b.exec('nft', ['-j', 'list', 'chain', 'inet', 't', 'in'])) as {
      nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }>;
    };
    const counter = out.nftables.flatMap((o) => o.rule?.expr ?? []).find((x) => x.counter)?.counter;
    expect(counter?.packets).toBeGreaterThanOrEqual(3);
  });

  it('10,000 rules and 1,000 sets in one batch, against nft -f of the same', () => {
    const viaNetlink = netns();
    const viaNft = netns();
    const SETS = 1000;
    const RULES = 10_000;
    const CHAINS = 10;
    const ops: NftOp[] = [{ op: 'add-table', ...T }];
    const text: string[] = ['add table inet t'];
    for (let i = 0; i < CHAINS; i++) {
      ops.push({ op: 'add-chain', ...T, name: `c${i}` });
      text.push(`add chain inet t c${i}`);
    }
    for (let i = 0; i < SETS; i++) {
      const set: SetSpec = { ...T, name: `s${i}`, key: ['ipv4_addr'] };
      const addrs = [1, 2, 3, 4, 5].map((k) => `10.${i >> 8}.${i & 255}.${k}`);
      ops.push({ op: 'add-set', set }, { op: 'add-elements', set, elements: addrs.map((x) => ({ key: [x] })) });
      text.push(`add set inet t s${i} { type ipv4_addr; }`, `add element inet t s${i} { ${addrs.join(', ')} }`);
    }
    for (let i = 0; i < RULES; i++) {
      const chain = `c${i % CHAINS}`;
      const port = 1000 + (i % 50000);
      ops.push({
        op: 'add-rule',
        ...T,
        chain,
        rule: [
          { kind: 'lookup', fields: ['ip saddr'], set: `s${i % SETS}` },
          { kind: 'match', field: 'th dport', value: port },
          { kind: 'counter' },
          { kind: 'verdict', verdict: { code: 'accept' } },
        ],
        comment: `r${i}`,
      });
      text.push(`add rule inet t ${chain} ip saddr @s${i % SETS} th dport ${port} counter accept comment "r${i}"`);
    }
    const nl = socketIn(viaNetlink);
    // Wall time on a shared machine says little, so CPU time too: this process's (encoding and the
    // kernel's work, which runs in send()), and nft's as the shell's `time` reports it.
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = applyBatch(nl, ops);
    const netlinkMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const file = join(dir, 'big.nft');
    writeFileSync(file, `${text.join('\n')}\n`);
    const t1 = performance.now();
    const timed = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time ip netns exec ${viaNft.name} nft -f ${file}`], {
      encoding: 'utf8',
    });
    const nftMs = performance.now() - t1;
    expect(timed.status).toBe(0);
    const [user, sys] = timed.stderr.trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    console.log(
      `nf_tables batch of ${ops.length} operations (${RULES} rules, ${SETS} sets, ${SETS * 5} elements): netlink ` +
        `${netlinkMs.toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU (${(cpu.system / 1000).toFixed(0)} ms ` +
        `in the kernel), ${(result.bytes / 1e6).toFixed(1)} MB; nft -f ${nftMs.toFixed(0)} ms wall, ` +
        `${(((user ?? 0) + (sys ?? 0)) * 1000).toFixed(0)} ms CPU (${((sys ?? 0) * 1000).toFixed(0)} ms in the kernel)`,
    );
    expect(listed(viaNetlink)).toEqual(listed(viaNft));
  });
});

describe('a pod-start sized change', () => {
  it('three element additions and a rule: netlink against nft -f, median of 20', () => {
    const viaNetlink = netns();
    const viaNft = netns();
    const nl = socketIn(viaNetlink);
    applyBatch(nl, [...head, { op: 'add-set', set: s4 }, { op: 'add-set', set: vm }]);
    nftFile(
      viaNft,
      `${headText}add set inet t s4 { type ipv4_addr; }\nadd map inet t vm { type ipv4_addr : verdict; }\n`,
    );
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
    const netlinkMs: number[] = [];
    const nftMs: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const chain = `pod${i}`;
      const addr = `10.9.0.${i}`;
      let t = performance.now();
      applyBatch(nl, [
        { op: 'add-chain', ...T, name: chain },
        {
          op: 'add-rule',
          ...T,
          chain,
          rule: [
            { kind: 'match', field: 'tcp dport', value: 80 },
            { kind: 'counter' },
            { kind: 'verdict', verdict: { code: 'accept' } },
          ],
        },
        { op: 'add-elements', set: s4, elements: [{ key: [addr], comment: chain }] },
        { op: 'add-elements', set: vm, elements: [{ key: [addr], verdict: { code: 'jump', chain } }] },
      ]);
      netlinkMs.push(performance.now() - t);
      const file = join(dir, `${chain}.nft`);
      writeFileSync(
        file,
        `add chain inet t ${chain}\nadd rule inet t ${chain} tcp dport 80 counter accept
add element inet t s4 { ${addr} comment "${chain}" }\nadd element inet t vm { ${addr} : jump ${chain} }\n`,
      );
      t = performance.now();
      viaNft.exec('nft', ['-f', file]);
      nftMs.push(performance.now() - t);
    }
    console.log(
      `pod-start sized batch: netlink median ${median(netlinkMs).toFixed(2)} ms, nft -f median ${median(nftMs).toFixed(2)} ms`,
    );
    expect(listed(viaNetlink)).toEqual(listed(viaNft));
  });
});

describe('refusals', () => {
  it('a jump loop through a verdict map is refused at the element that closes it, and nothing is applied', () => {
    const ns = netns();
    const ops: NftOp[] = [
      ...head,
      { op: 'add-set', set: vm },
      { op: 'add-rule', ...T, chain: 'base', rule: [{ kind: 'verdict', verdict: { code: 'jump', chain: 'c' } }] },
      { op: 'add-rule', ...T, chain: 'c', rule: [{ kind: 'vmap', fields: ['ip daddr'], map: 'vm' }] },
      { op: 'add-elements', set: vm, elements: [{ key: ['10.1.1.1'], verdict: { code: 'jump', chain: 'c' } }] },
    ];
    expect(() => applyBatch(socketIn(ns), ops)).toThrow(expect.objectContaining({ index: 6, code: 'EMLINK' }));
    expect(ns.tryExec('nft', ['list', 'table', 'inet', 't']).status).not.toBe(0);
  });

  it('a large batch whose every message fails still reports them all, not a lost answer (ENOBUFS)', () => {
    const ns = netns();
    const ops: NftOp[] = Array.from({ length: 5000 }, () => ({
      op: 'add-rule',
      table: 'missing',
      chain: 'c',
      rule: [{ kind: 'counter' }],
    }));
    let err: unknown;
    try {
      applyBatch(socketIn(ns), ops);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NftBatchError);
    expect((err as NftBatchError).index).toBe(0);
    expect((err as NftBatchError).failures).toHaveLength(5000);
  });
});
