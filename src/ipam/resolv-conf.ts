// The IPAM `resolvConf` option: a resolv.conf turned into the result's dns, line by line as the
// reference host-local does (plugins/ipam/host-local/dns.go): `nameserver` (first field, appended),
// `domain` (the last one wins), `search` and `options` (all fields, appended). Blank lines and lines
// starting with "#" or ";" are comments; lines with fewer than two fields are ignored.
import { readFileSync } from 'node:fs';
import type { Dns } from '../cni/result.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';

export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const [key, first] = fields as [string, string];
    switch (key) {
      case 'nameserver':
        (dns.nameservers ??= []).push(first);
        break;
      case 'domain':
        dns.domain = first;
        break;
      case 'search':
        (dns.search ??= []).push(...fields.slice(1));
        break;
      case 'options':
        (dns.options ??= []).push(...fields.slice(1));
        break;
    }
  }
  return dns;
}

/** Reads and parses the file named by ipam.resolvConf; an unreadable file is a configuration error. */
export function readResolvConf(path: string): Dns {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(
      ErrorCode.InvalidNetworkConfig,
      `invalid ipam.resolvConf: could not read ${path}: ${(err as Error).message}`,
    );
  }
  return parseResolvConf(text);
}
