// The enforcer's cut bookkeeping (src/agent/policy/cut-queue.ts): a bind's look waits until asked,
// looks share one conntrack socket (opened once, not per pod start), a socket that failed is opened
// again, and a change's look takes the waiting binds' addresses along.
import { describe, expect, it } from 'vitest';
import { CutQueue } from '../../src/agent/policy/cut-queue.ts';
import { silentLogger } from '../../src/log.ts';
import { compilePolicy } from '../../src/policy/index.ts';
import { fakeConntrack, flow, input, pod } from '../support/cut-fixtures.ts';

describe('CutQueue', () => {
  it("waits with a bind's look until asked, shares one socket, and opens another after a failure", () => {
    const a = pod('a', '10.244.1.2');
    const toNew = flow('10.244.2.9', '10.244.1.9');
    const toNewer = flow('10.244.2.9', '10.244.1.10');
    const toA = flow('10.244.2.9', '10.244.1.2');
    const ct = fakeConntrack([toNew, toNewer, toA]);
    let errors = 0;
    const metrics = { conntrackDeleted: { inc: () => {} }, conntrackErrors: { inc: () => errors++ } } as never;
    const q = new CutQueue({ log: silentLogger, metrics, open: ct.open });
    const model = compilePolicy(input([a, pod('new', '10.244.1.9'), pod('newer', '10.244.1.10')]));

    q.defer(new Map([['x/new', ['10.244.1.9']]]));
    expect(q.pending).toBe(1);
    expect(ct.events).toEqual([]);
    ct.failNextList();
    q.cutBound(model);
    expect(errors).toBe(1);
    expect(ct.events).toEqual(['open', 'list 4', 'close']);
    expect(q.pending).toBe(0);

    // The next look opens a socket again and keeps it: two looks, one open.
    q.defer(new Map([['x/new', ['10.244.1.9']]]));
    q.cutBound(model);
    q.defer(new Map([['x/newer', ['10.244.1.10']]]));
    q.cutBound(model);
    expect(ct.events).toEqual(['open', 'list 4', 'close', 'open', 'list 4', 'list 4']);
    expect(ct.table).toEqual([toA]);
    q.close();
    expect(ct.events.at(-1)).toBe('close');
  });

  it("takes the waiting binds' addresses along with a change's look", () => {
    const a = pod('a', '10.244.1.2');
    const toNew = flow('10.244.2.9', '10.244.1.9');
    const ct = fakeConntrack([toNew]);
    const metrics = { conntrackDeleted: { inc: () => {} }, conntrackErrors: { inc: () => {} } } as never;
    const q = new CutQueue({ log: silentLogger, metrics, open: ct.open });
    const before = compilePolicy(input([a, pod('new', '10.244.1.9')]));
    q.defer(new Map([['x/new', ['10.244.1.9']]]));
    // The same model before and after: nothing changed but the waiting bind's address is looked for.
    q.cutChange(before, before);
    expect(ct.table).toEqual([]);
    expect(q.pending).toBe(0);
  });
});
