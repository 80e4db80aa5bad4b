#!/usr/bin/env node
// The demo: Strand wiring pods with no cluster. A network namespace stands in for a node, others for
// its pods; dist/strand is run for each pod exactly as a container runtime runs it (CNI_* variables,
// the configuration on stdin). It prints the results, who reaches whom, and removes everything.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const strand = join(root, 'dist', 'strand');
const tag = process.pid.toString(36);
const node = `sdemo-node-${tag}`;
const outside = `sdemo-out-${tag}`;
const pods = ['web', 'db', 'cache'].map((name) => ({ name, ns: `sdemo-${name}-${tag}`, id: `demo-${name}-${tag}` }));
const dir = mkdtempSync(join(tmpdir(), 'strand-demo-'));
const conf = {
  cniVersion: '1.1.0',
  name: 'demo',
  type: 'strand',
  bridge: 'cni0',
  isGateway: true,
  isDefaultGateway: true,
  hairpinMode: true,
  ipMasq: true,
  agentSocket: false,
  logFile: join(dir, 'cni.log'),
  ipam: { type: 'strand-ipam', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.88.0.0/24' }], [{ subnet: 'fd88::/64' }]] },
};

const ip = (...args) => execFileSync('ip', args, { encoding: 'utf8' });
const quiet = (...args) => spawnSync('ip', args, { stdio: 'ignore' });

function cni(command, pod) {
  const r = spawnSync('ip', ['netns', 'exec', node, strand], {
    env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: pod.id, CNI_NETNS: `/run/netns/${pod.ns}`, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=${pod.name}` },
    input: JSON.stringify(conf),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${command} ${pod.name} failed: ${r.stdout}${r.stderr}`);
  return r.stdout ? JSON.parse(r.stdout) : undefined;
}

function reaches(fromNs, address) {
  const v6 = address.includes(':');
  return spawnSync('ip', ['netns', 'exec', fromNs, 'ping', v6 ? '-6' : '-4', '-c1', '-W1', address], { stdio: 'ignore' }).status === 0;
}

function cleanup() {
  for (const p of pods) quiet('netns', 'del', p.ns);
  quiet('netns', 'del', outside);
  quiet('netns', 'del', node);
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

try {
  console.log(`Strand demo: one node (network namespace ${node}) with ${pods.length} pods, and an "outside" host.\n`);
  for (const ns of [node, outside, ...pods.map((p) => p.ns)]) {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  // The node's uplink to the outside host: 198.18.0.1 on the node, 198.18.0.2 outside.
  ip('link', 'add', 'uplink', 'netns', node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside);
  ip('-n', node, 'addr', 'add', '198.18.0.1/30', 'dev', 'uplink');
  ip('-n', node, 'link', 'set', 'uplink', 'up');
  ip('-n', outside, 'addr', 'add', '198.18.0.2/30', 'dev', 'eth0');
  ip('-n', outside, 'link', 'set', 'eth0', 'up');

  const t0 = process.hrtime.bigint();
  for (const p of pods) {
    const started = process.hrtime.bigint();
    const result = cni('ADD', p);
    p.ips = result.ips.map((i) => i.address.split('/')[0]);
    p.hostVeth = result.interfaces[1].name;
    console.log(`ADD ${p.name.padEnd(6)} -> ${p.ips.join(', ').padEnd(26)} host veth ${p.hostVeth}  (${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(0)} ms)`);
  }
  console.log(`\n${pods.length} pods wired in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms. Bridge cni0 on the node:`);
  console.log(ip('-n', node, '-br', 'addr', 'show', 'cni0').trim());

  const columns = [...pods.map((p) => ({ label: p.name, addresses: p.ips })), { label: 'outside', addresses: ['198.18.0.2'] }];
  console.log('\nWho reaches whom (ping; IPv4/IPv6; "outside" is reached through the masquerade):');
  console.log(['from \\ to', ...columns.map((c) => c.label)].map((c) => c.padEnd(10)).join(''));
  for (const p of pods) {
    const cells = columns.map((c) => c.addresses.map((a) => (reaches(p.ns, a) ? 'yes' : 'NO')).join('/'));
    console.log([p.name, ...cells].map((c) => c.padEnd(10)).join(''));
  }
  console.log('\nStrand\'s nftables table on the node (set elements are the pods, named by their host veth):');
  console.log(execFileSync('ip', ['netns', 'exec', node, 'nft', 'list', 'table', 'inet', 'strand'], { encoding: 'utf8' }).trim());

  for (const p of pods) cni('DEL', p);
  const left = ip('-n', node, '-br', 'link').split('\n').filter((l) => l.startsWith('veth'));
  console.log(`\nDEL of every pod: ${left.length} host veths left, ${spawnSync('ls', [join(dir, 'ipam', 'demo')], { encoding: 'utf8' }).stdout.split('\n').filter((f) => /^[0-9a-f.:]+$/.test(f) && f).length} addresses reserved.`);
} finally {
  cleanup();
}
