import { describe, expect, it } from 'vitest';
import { interfaceNameProblem, parseEnv } from '../../src/cni/env.ts';
import { cniFailure } from '../support/cni-error.ts';

const full = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
};

describe('parseEnv', () => {
  it('parses a complete ADD environment', () => {
    const env = parseEnv({ ...full, CNI_ARGS: 'IgnoreUnknown=1' });
    expect(env).toEqual({
      command: 'ADD',
      containerId: 'abc',
      netns: '/run/netns/x',
      ifname: 'eth0',
      args: 'IgnoreUnknown=1',
      path: ['/opt/cni/bin', '/usr/lib/cni'],
    });
  });

  it('rejects an unknown or lower-case command with code 4', () => {
    expect(cniFailure(() => parseEnv({ ...full, CNI_COMMAND: 'FOO' })).code).toBe(4);
    expect(cniFailure(() => parseEnv({ ...full, CNI_COMMAND: 'add' })).code).toBe(4);
  });

  const required: Record<string, string[]> = {
    ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  };
  for (const [verb, vars] of Object.entries(required)) {
    for (const v of vars) {
      it(`${verb} without ${v} is code 4 and names it`, () => {
        const env: NodeJS.ProcessEnv = { ...full, CNI_COMMAND: verb };
        delete env[v];
        expect(cniFailure(() => parseEnv(env)).code).toBe(4);
        expect(cniFailure(() => parseEnv(env)).message).toContain(v);
      });
    }
  }

  it('names every missing variable at once', () => {
    expect(cniFailure(() => parseEnv({ CNI_COMMAND: 'ADD' })).message).toBe(
      'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing',
    );
  });

  it('DEL needs no CNI_NETNS; GC, STATUS and VERSION need no attachment variables', () => {
    expect(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0' }).netns).toBe('');
    for (const verb of ['GC', 'STATUS', 'VERSION']) expect(parseEnv({ CNI_COMMAND: verb }).command).toBe(verb);
  });

  it('rejects container IDs that the reference rejects', () => {
    for (const id of ['-abc', 'a b', 'a/b', '.x', 'ä']) {
      expect(cniFailure(() => parseEnv({ ...full, CNI_CONTAINERID: id })).code).toBe(4);
    }
    expect(parseEnv({ ...full, CNI_CONTAINERID: 'A1_b.c-d' }).containerId).toBe('A1_b.c-d');
  });

  it('rejects bad interface names with code 4', () => {
    for (const name of ['eth0:1', 'a b', 'x/y', '.', '..', 'abcdefghijklmnop']) {
      expect(cniFailure(() => parseEnv({ ...full, CNI_IFNAME: name })).code).toBe(4);
    }
    expect(parseEnv({ ...full, CNI_IFNAME: 'abcdefghijklmno' }).ifname).toBe('abcdefghijklmno');
  });

  it('describes interface name problems', () => {
    expect(interfaceNameProblem('eth0')).toBeUndefined();
    expect(interfaceNameProblem('')).toBe('is empty');
    expect(interfaceNameProblem('a'.repeat(16))).toMatch(/longer than 15/);
  });

  it('ignores unknown variables and drops empty CNI_PATH entries', () => {
    expect(parseEnv({ ...full, CNI_PATH: ':/a::/b:', SOMETHING: 'x' }).path).toEqual(['/a', '/b']);
  });
});
