// resolv.conf parsing for ipam.resolvConf, as reference host-local dns.go does it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CniError, ErrorCode } from '../../src/cni/errors.ts';
import { parseResolvConf, readResolvConf } from '../../src/ipam/resolv-conf.ts';

describe('parseResolvConf', () => {
  it('reads nameserver, domain, search and options', () => {
    const text = [
      '# generated',
      'nameserver 10.96.0.10',
      '  nameserver   fd00::10  ',
      'domain cluster.local',
      'search default.svc.cluster.local svc.cluster.local',
      'search cluster.local',
      'options ndots:5 timeout:2',
      'options attempts:3',
    ].join('\n');
    expect(parseResolvConf(text)).toEqual({
      nameservers: ['10.96.0.10', 'fd00::10'],
      domain: 'cluster.local',
      search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      options: ['ndots:5', 'timeout:2', 'attempts:3'],
    });
  });

  it('skips # and ; comments, blank lines, one-field lines and unknown keys; the last domain wins', () => {
    const text = [
      '; comment',
      '#nameserver 1.1.1.1',
      '',
      '   ',
      'nameserver',
      'sortlist 10.0.0.0',
      'domain a.example',
      'domain b.example',
      'nameserver 9.9.9.9 extra',
    ].join('\r\n');
    expect(parseResolvConf(text)).toEqual({ domain: 'b.example', nameservers: ['9.9.9.9'] });
  });

  it('an empty file gives empty dns', () => {
    expect(parseResolvConf('')).toEqual({});
  });

  it('separates fields by tabs as well as spaces', () => {
    expect(parseResolvConf('search\ta.example\t b.example')).toEqual({ search: ['a.example', 'b.example'] });
  });
});

describe('readResolvConf', () => {
  it('reads a file, and a missing one is code 7 naming ipam.resolvConf and the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-resolv-'));
    try {
      const path = join(dir, 'resolv.conf');
      writeFileSync(path, 'nameserver 192.0.2.53\n');
      expect(readResolvConf(path)).toEqual({ nameservers: ['192.0.2.53'] });
      let caught: unknown;
      try {
        readResolvConf(join(dir, 'absent'));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CniError);
      expect((caught as CniError).code).toBe(ErrorCode.InvalidNetworkConfig);
      expect((caught as CniError).message).toContain(`ipam.resolvConf: could not read ${join(dir, 'absent')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
