import { describe, expect, it } from 'vitest';
import { K8S_ARG_KEYS, kubernetesPodArgs, parseCniArgs } from '../../src/cni/args.ts';
import { cniFailure } from '../support/cni-error.ts';

describe('parseCniArgs', () => {
  it('parses what Kubernetes runtimes send', () => {
    const raw =
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=0b1c';
    const args = parseCniArgs(raw, K8S_ARG_KEYS);
    expect(kubernetesPodArgs(args)).toEqual({
      namespace: 'default',
      name: 'web-0',
      infraContainerId: 'abc123',
      uid: '0b1c',
    });
  });

  it('is empty for an empty string', () => {
    expect(parseCniArgs('', K8S_ARG_KEYS).size).toBe(0);
  });

  it('rejects unknown keys without IgnoreUnknown, naming them', () => {
    const e = cniFailure(() => parseCniArgs('FOO=1;K8S_POD_NAME=x;BAR=2', K8S_ARG_KEYS));
    expect(e.code).toBe(4);
    expect(e.message).toContain('"FOO"');
    expect(e.message).toContain('"BAR"');
  });

  it('accepts unknown keys when IgnoreUnknown is true in any Go spelling', () => {
    for (const v of ['1', 'true', 'True', 'TRUE', 't']) {
      expect(parseCniArgs(`IgnoreUnknown=${v};FOO=1`, []).size).toBe(0);
    }
  });

  it('rejects unknown keys when IgnoreUnknown is false', () => {
    expect(cniFailure(() => parseCniArgs('IgnoreUnknown=0;FOO=1', [])).code).toBe(4);
  });

  it('rejects a non-boolean IgnoreUnknown', () => {
    expect(cniFailure(() => parseCniArgs('IgnoreUnknown=yes', [])).message).toContain('not a boolean');
  });

  it('rejects pairs without exactly one "="', () => {
    // "=" alone has one "=" but an empty key, which no plugin knows.
    for (const raw of ['FOO', 'A=1=2', 'K8S_POD_NAME=x;;', '=']) {
      expect(cniFailure(() => parseCniArgs(raw, K8S_ARG_KEYS)).code).toBe(4);
    }
  });

  it('keeps values containing spaces and commas', () => {
    expect(parseCniArgs('IP=10.0.0.2,fd00::2', ['IP']).get('IP')).toBe('10.0.0.2,fd00::2');
  });
});
