// The node state file (src/contracts/node-state.ts) that usePodCidr reads: atomic write, validation,
// and code 11 with the path when it is missing or damaged.
import { cniFailure } from '../support/cni-error.ts';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/cni/errors.ts';
import { nodeStatePath, readNodeState, writeNodeState, type NodeState } from '../../src/contracts/node-state.ts';

const good: NodeState = {
  version: 1,
  nodeName: 'node-a',
  podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'],
  clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/56'],
  mtu: 1450,
  backend: 'vxlan',
  agentSocket: '/run/strand/agent.sock',
  updatedAt: '2026-01-02T03:04:05.678Z',
};

describe('node state', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-node-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips through <stateDir>/node.json, creating the directory, leaving no temp file', () => {
    const stateDir = join(dir, 'run', 'strand');
    writeNodeState(stateDir, good);
    expect(nodeStatePath(stateDir)).toBe(join(stateDir, 'node.json'));
    expect(readdirSync(stateDir)).toEqual(['node.json']);
    expect(statSync(nodeStatePath(stateDir)).mode & 0o777).toBe(0o644);
    expect(readNodeState(stateDir)).toEqual(good);
    expect(JSON.parse(readFileSync(nodeStatePath(stateDir), 'utf8'))).toEqual(good);
  });

  it('agentSocket is optional; the backend may be host-gw or none', () => {
    const { agentSocket: _, ...rest } = good;
    writeNodeState(dir, { ...rest, backend: 'host-gw' });
    expect(readNodeState(dir).agentSocket).toBeUndefined();
    writeNodeState(dir, { ...rest, backend: 'none', podCIDRs: [] });
    expect(readNodeState(dir).backend).toBe('none');
  });

  it('missing file: code 11 saying what is missing and where', () => {
    const err = cniFailure(() => readNodeState(dir));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    expect(err.message).toBe(
      `node state ${dir}/node.json not found: the strand agent has not written this node's pod CIDR yet`,
    );
  });

  it('not JSON: code 11', () => {
    writeFileSync(join(dir, 'node.json'), '{"version":1,');
    const err = cniFailure(() => readNodeState(dir));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    expect(err.message).toMatch(new RegExp(`^node state ${dir}/node.json is not valid JSON`));
  });

  it('unreadable (a directory in its place): code 11', () => {
    mkdirSync(join(dir, 'node.json'));
    const err = cniFailure(() => readNodeState(dir));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    expect(err.message).toMatch(new RegExp(`^could not read node state ${dir}/node.json: EISDIR`));
  });

  const invalid: [string, unknown, RegExp][] = [
    ['wrong version', { ...good, version: 2 }, /version/],
    ['bad pod CIDR', { ...good, podCIDRs: ['10.244.1.0'] }, /podCIDRs\.0: not a CIDR/],
    ['bad backend', { ...good, backend: 'wireguard' }, /backend/],
    ['bad mtu', { ...good, mtu: 10 }, /mtu/],
    ['missing nodeName', { ...good, nodeName: undefined }, /nodeName/],
    ['bad updatedAt', { ...good, updatedAt: 'yesterday' }, /updatedAt/],
  ];
  for (const [name, json, field] of invalid) {
    it(`invalid content (${name}): code 11 naming the field`, () => {
      writeFileSync(join(dir, 'node.json'), JSON.stringify(json));
      const err = cniFailure(() => readNodeState(dir));
      expect(err.code).toBe(ErrorCode.TryAgainLater);
      expect(err.message).toMatch(new RegExp(`^node state ${dir}/node.json is invalid: `));
      expect(err.message).toMatch(field);
    });
  }

  it('refuses to write an invalid state', () => {
    expect(() => writeNodeState(dir, { ...good, podCIDRs: ['nope'] })).toThrow(/podCIDRs/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
