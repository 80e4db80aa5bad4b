// A table of policy shape at scale for the nf_tables read tests and bench/nft-read.mjs: `chains`
// pod chains of `rulesPerChain` rules, each rule with a counter and a comment, reached from a base
// chain through a verdict map (one element per chain), as Strand's policy table is laid out.

/** The pod chain names, in order. */
export function bigChainNames(chains: number): string[] {
  return Array.from({ length: chains }, (_, i) => `pod-${i}`);
}

/** An `nft -f` script of table `inet <table>`: chains × rulesPerChain rules plus one dispatch rule. */
export function bigRuleset(chains: number, rulesPerChain: number, table = 'strand'): string {
  const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const lines = [`table inet ${table} {`];
  const names = bigChainNames(chains);
  lines.push('  map pods { type ipv4_addr : verdict;');
  lines.push(`    elements = { ${names.map((n, i) => `${ip(i + 1)} : jump ${n}`).join(', ')} }`);
  lines.push('  }');
  lines.push('  chain forward { type filter hook forward priority 0; policy accept;');
  lines.push('    ip daddr vmap @pods');
  lines.push('  }');
  names.forEach((n, c) => {
    lines.push(`  chain ${n} {`);
    for (let r = 0; r < rulesPerChain; r++) {
      lines.push(
        `    ip saddr ${ip(100_000 + c * rulesPerChain + r)} tcp dport ${1000 + r} counter accept comment "${n} rule ${r}"`,
      );
    }
    lines.push('  }');
  });
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
