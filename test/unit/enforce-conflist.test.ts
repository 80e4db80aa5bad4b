// The agent writes policyWhenNoAgent into the conflist only when it is "fail": the default file stays
// byte for byte what `strand install` writes.
import { describe, expect, it } from 'vitest';
import { agentConflistText as renderConflist, buildConflist } from '../../src/agent/cni-conflist.ts';

const base = {
  bridge: 'cni0',
  stateDir: '/run/strand',
  ipamDataDir: '/var/lib/cni/networks',
  cniLogFile: '/var/log/strand/cni.log',
  podStartWaitMs: 2000,
};

describe('conflist policyWhenNoAgent', () => {
  it('is left out for "allow" and written for "fail"', () => {
    expect(renderConflist({ ...base, policyWhenNoAgent: 'allow' })).toBe(renderConflist(base));
    expect(renderConflist(base)).not.toContain('policyWhenNoAgent');
    const plugins = buildConflist({ ...base, policyWhenNoAgent: 'fail' }).plugins as Record<string, unknown>[];
    expect(plugins[0]).toMatchObject({ type: 'strand', policyWhenNoAgent: 'fail' });
  });
});
