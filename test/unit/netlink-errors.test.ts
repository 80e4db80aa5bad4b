import { describe, expect, it } from 'vitest';
import { errnoName, fromSystemError, isKernelError, KernelError } from '../../src/kernel/errors.ts';
import { interfaceSysctl, sysctlPath } from '../../src/kernel/sysctl.ts';

describe('KernelError', () => {
  it('says what failed, on which object, where, and what the kernel answered', () => {
    const e = new KernelError({ errno: 17, operation: 'add address 10.244.1.5/24 to eth0', netns: '/run/netns/x' });
    expect(e.message).toBe('failed to add address 10.244.1.5/24 to eth0 in /run/netns/x: File exists');
    expect(e.code).toBe('EEXIST');
    expect(e.errno).toBe(17);
    expect(e.name).toBe('KernelError');
    expect(e).toBeInstanceOf(Error);
  });

  it('leaves out the namespace for the caller own one and adds the extended ack text', () => {
    const e = new KernelError({
      errno: 22,
      operation: 'add route 10.0.0.0/8 via 10.1.1.1',
      kernelMessage: 'Nexthop has invalid gateway',
    });
    expect(e.message).toBe(
      'failed to add route 10.0.0.0/8 via 10.1.1.1: Invalid argument (Nexthop has invalid gateway)',
    );
  });

  it('names errno values with the kernel spelling', () => {
    expect([errnoName(17), errnoName(19), errnoName(11), errnoName(95), errnoName(3), errnoName(99)]).toEqual([
      'EEXIST',
      'ENODEV',
      'EAGAIN',
      'EOPNOTSUPP',
      'ESRCH',
      'EADDRNOTAVAIL',
    ]);
    expect(errnoName(4000)).toBe('errno 4000');
  });

  it('is recognised by code', () => {
    const e = new KernelError({ errno: 19, operation: 'delete eth0' });
    expect(isKernelError(e)).toBe(true);
    expect(isKernelError(e, 'ENODEV', 'ENOENT')).toBe(true);
    expect(isKernelError(e, 'EEXIST')).toBe(false);
    expect(isKernelError(new Error('x'))).toBe(false);
  });

  it('wraps a Node fs error', () => {
    const fsErr = Object.assign(new Error('EACCES: permission denied'), { errno: -13, code: 'EACCES' });
    const e = fromSystemError(fsErr, 'write sysctl net.ipv4.ip_forward=1', '/run/netns/y') as KernelError;
    expect(e.message).toBe('failed to write sysctl net.ipv4.ip_forward=1 in /run/netns/y: Permission denied');
    expect(e.cause).toBe(fsErr);
    const other = new Error('not a system error');
    expect(fromSystemError(other, 'x')).toBe(other);
  });
});

describe('sysctl keys', () => {
  it('maps dotted keys and slash keys to /proc/sys paths', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/eth0.100/rp_filter')).toBe('/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    expect(interfaceSysctl('ipv6', 'br.0', 'accept_ra')).toBe('net/ipv6/conf/br.0/accept_ra');
  });

  it('refuses keys that would leave /proc/sys', () => {
    expect(() => sysctlPath('net/../../etc/passwd')).toThrow(/invalid sysctl key/);
    expect(() => sysctlPath('net..ipv4')).toThrow(/invalid sysctl key/);
  });
});
