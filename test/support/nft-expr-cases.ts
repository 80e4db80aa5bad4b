// Every expression kind Strand writes, as typed bodies with the nft text each renders to: the renderer's
// unit test reads them, and the kernel round trip (test/integration/nft-expr.test.ts) applies them and
// parses them back. The sets, maps and chains they name are made by exprCaseObjects().
import { addrField, addrValue, counter, lookup, match, meta, payload, verdict, type Expr } from '../../src/nft/expr.ts';
import type { NftObject } from '../../src/nft/objects.ts';

export const EXPR_CASES: readonly { body: Expr[]; text: string; chain: 'x-nat' | 'x-filter' }[] = [
  {
    chain: 'x-nat',
    body: [
      lookup(addrField(4, 'saddr'), 'x-cidrs'),
      lookup(addrField(4, 'daddr'), 'x-cidrs', 'ne'),
      match(addrField(4, 'daddr'), addrValue('224.0.0.0/4'), 'ne'),
      { kind: 'masquerade', fullyRandom: true },
    ],
    text: 'ip saddr @x-cidrs ip daddr != @x-cidrs ip daddr != 224.0.0.0/4 masquerade fully-random',
  },
  {
    chain: 'x-nat',
    body: [match(addrField(6, 'daddr'), addrValue('ff00::/8'), 'ne'), { kind: 'masquerade' }],
    text: 'ip6 daddr != ff00::/8 masquerade',
  },
  {
    chain: 'x-filter',
    body: [
      match({ kind: 'ct', key: 'state' }, { kind: 'flags', values: ['established', 'related'] }),
      verdict('accept'),
    ],
    text: 'ct state established,related accept',
  },
  {
    chain: 'x-filter',
    body: [
      match(payload('icmpv6 type'), {
        kind: 'anon-set',
        elements: [
          { kind: 'keyword', value: 'nd-neighbor-solicit' },
          { kind: 'keyword', value: 'nd-neighbor-advert' },
        ],
      }),
      verdict('accept'),
    ],
    text: 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
  },
  {
    chain: 'x-filter',
    body: [{ kind: 'vmap', keys: [addrField(4, 'saddr')], map: 'x-vmap' }],
    text: 'ip saddr vmap @x-vmap',
  },
  {
    chain: 'x-filter',
    body: [match(addrField(4, 'saddr'), addrValue('10.0.0.1')), verdict('return')],
    text: 'ip saddr 10.0.0.1 return',
  },
  {
    chain: 'x-filter',
    body: [match(addrField(6, 'daddr'), addrValue('fd00::1')), verdict('accept')],
    text: 'ip6 daddr fd00::1 accept',
  },
  {
    chain: 'x-filter',
    body: [
      match(meta('l4proto'), { kind: 'keyword', value: 'tcp' }),
      match(payload('th dport'), { kind: 'number', value: 80 }),
      counter(),
      verdict('accept'),
    ],
    text: 'meta l4proto tcp th dport 80 counter accept',
  },
  {
    chain: 'x-filter',
    body: [
      match(meta('l4proto'), { kind: 'keyword', value: 'udp' }),
      match(payload('th dport'), { kind: 'range', from: 80, to: 90 }),
      counter(),
      verdict('return'),
    ],
    text: 'meta l4proto udp th dport 80-90 counter return',
  },
  {
    chain: 'x-filter',
    body: [lookup([meta('l4proto'), payload('th dport')], 'x-ports'), counter(), verdict('accept')],
    text: 'meta l4proto . th dport @x-ports counter accept',
  },
  {
    chain: 'x-filter',
    body: [
      lookup([addrField(4, 'daddr'), meta('l4proto'), payload('th dport')], 'x-named'),
      counter(),
      verdict('return'),
    ],
    text: 'ip daddr . meta l4proto . th dport @x-named counter return',
  },
  {
    chain: 'x-filter',
    body: [
      { kind: 'limit', rate: 5, per: 'second', burst: 10 },
      { kind: 'log', prefix: 'strand-deny x: ', level: 'info' },
    ],
    text: 'limit rate 5/second burst 10 packets log prefix "strand-deny x: " level info',
  },
  {
    chain: 'x-filter',
    body: [
      { kind: 'limit', rate: 5, per: 'second', burst: 10 },
      { kind: 'log', prefix: 'strand-deny x: ', group: 3 },
    ],
    text: 'limit rate 5/second burst 10 packets log prefix "strand-deny x: " group 3',
  },
  { chain: 'x-filter', body: [counter(), verdict('drop')], text: 'counter drop' },
  {
    chain: 'x-filter',
    body: [
      match(meta('iifname'), { kind: 'name', value: 'eth0' }),
      match(meta('oifname'), { kind: 'name', value: 'veth1' }, 'ne'),
      match(meta('nfproto'), { kind: 'keyword', value: 'ipv4' }),
      verdict('jump', 'x-target'),
    ],
    text: 'iifname "eth0" oifname != "veth1" meta nfproto ipv4 jump x-target',
  },
  {
    chain: 'x-filter',
    body: [lookup(meta('iifname'), 'x-ifnames'), verdict('goto', 'x-target')],
    text: 'iifname @x-ifnames goto x-target',
  },
  {
    chain: 'x-filter',
    body: [match({ kind: 'fib', key: 'daddr type' }, { kind: 'keyword', value: 'local' }), verdict('continue')],
    text: 'fib daddr type local continue',
  },
  {
    chain: 'x-filter',
    body: [
      match(meta('l4proto'), {
        kind: 'anon-set',
        elements: [
          { kind: 'keyword', value: 'tcp' },
          { kind: 'keyword', value: 'udp' },
        ],
      }),
      match(payload('th sport'), { kind: 'number', value: 53 }, 'ne'),
      verdict('drop'),
    ],
    text: 'meta l4proto { tcp, udp } th sport != 53 drop',
  },
];

/** The table's objects the cases name (chains first, then sets and maps). */
export function exprCaseObjects(): NftObject[] {
  return [
    { kind: 'table' },
    { kind: 'chain', name: 'x-nat', base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' } },
    { kind: 'chain', name: 'x-filter', base: { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' } },
    { kind: 'chain', name: 'x-target' },
    { kind: 'set', name: 'x-cidrs', type: 'ipv4_addr', flags: ['interval'] },
    { kind: 'set', name: 'x-ports', type: 'inet_proto . inet_service', flags: ['interval'] },
    { kind: 'set', name: 'x-named', type: 'ipv4_addr . inet_proto . inet_service' },
    { kind: 'set', name: 'x-ifnames', type: 'ifname' },
    { kind: 'map', name: 'x-vmap', type: 'ipv4_addr', value: 'verdict' },
  ];
}
