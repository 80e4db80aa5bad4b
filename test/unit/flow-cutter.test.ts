// The flow cutter's choice of what to walk (flow-cutter.ts): each family walked is the whole table in
// the kernel, so only the families of the addresses looked for; after a pod-start bind, only the bound
// pods' addresses (a brand-new address included: entries made before its rules were in).
import { describe, expect, it } from 'vitest';
import { cutDeniedFlows } from '../../src/agent/policy/flow-cutter.ts';
import { silentLogger } from '../../src/log.ts';
import { compilePolicy } from '../../src/policy/index.ts';
import { fakeConntrack, flow, input, pod } from '../support/cut-fixtures.ts';

const metrics = { conntrackDeleted: { inc: () => {} }, conntrackErrors: { inc: () => {} } } as never;

describe('cutDeniedFlows: what it walks', () => {
  it('after a bind, only the bound addresses in their family, unreplied entries to a brand-new address included', () => {
    const a = pod('a', '10.244.1.2', 'a');
    // Sent to the new pod's address before its rules were in (no reply yet), and a flow of x/a that
    // the bind does not change.
    const early = flow('10.244.2.9', '10.244.1.9', 80);
    const other = flow('10.244.2.9', '10.244.1.2', 80);
    const ct = fakeConntrack([early, other, flow('fd00::9', 'fd00::2', 80, 6)]);
    const before = compilePolicy(input([a]));
    const after = compilePolicy(input([a, pod('new', '10.244.1.9', 'n')]));
    cutDeniedFlows({ log: silentLogger, metrics, open: ct.open }, before, after, ['10.244.1.9']);
    expect(ct.listed()).toEqual([4]);
    expect(ct.table).not.toContain(early);
    expect(ct.table).toContain(other);
    expect(ct.table.map((e) => e.family)).toEqual([4, 6]);
  });

  it('the first cut looks at every local pod (their family only); nothing to look for opens nothing', () => {
    const a = pod('a', '10.244.1.2', 'a');
    const ct = fakeConntrack([flow('10.244.2.9', '10.244.1.2', 80)]);
    const first = compilePolicy(input([a]));
    cutDeniedFlows({ log: silentLogger, metrics, open: ct.open }, undefined, first);
    expect(ct.listed()).toEqual([4]);
    expect(ct.table).toEqual([]);
    const opened = ct.opened();
    cutDeniedFlows({ log: silentLogger, metrics, open: ct.open }, first, first);
    expect(ct.opened()).toBe(opened);
  });

  it("looks for an earlier bind's addresses too (its look waited for the notices behind it): one walk for all", () => {
    const a = pod('a', '10.244.1.2', 'a');
    const first = flow('10.244.2.9', '10.244.1.8', 80);
    const second = flow('10.244.2.9', '10.244.1.9', 80);
    const ct = fakeConntrack([first, second]);
    const after = compilePolicy(input([a, pod('one', '10.244.1.8', 'n'), pod('two', '10.244.1.9', 'n')]));
    cutDeniedFlows({ log: silentLogger, metrics, open: ct.open }, after, after, ['10.244.1.9'], ['10.244.1.8']);
    expect(ct.listed()).toEqual([4]);
    expect(ct.table).toEqual([]);
  });
});
