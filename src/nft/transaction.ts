// A Transaction collects operations on nftables objects and renders them as one `nft -f` script, one
// command per line; an NftTransport (runner.ts against the kernel, fake.ts in memory) applies it all or
// nothing. Objects are checked when they are added, so a bad name or comment fails at the call that
// made it, not later inside nft.
//
// There is deliberately no way to flush or delete the table: Strand's table `inet strand` is shared
// by the CNI plugin (its `cni-*` objects, made over netlink) and the agent, and neither may remove the
// other's objects. A transaction may further be limited to names with one prefix (`ownedPrefix`).
import {
  checkHandle,
  checkName,
  checkObject,
  checkTableRef,
  NftObjectError,
  renderOperation,
  STRAND_TABLE,
  type Chain,
  type ChainRef,
  type Element,
  type MapRef,
  type NftMap,
  type NftObject,
  type NftSet,
  type Rule,
  type RuleRef,
  type SetRef,
  type Table,
  type TableRef,
  type Verb,
} from './objects.ts';

export type Operation =
  | { verb: 'add'; object: NftObject }
  | { verb: 'create'; object: Table | Chain | NftSet | NftMap | Element }
  | { verb: 'insert'; object: Rule }
  | { verb: 'replace'; object: Rule & { handle: number } }
  | { verb: 'flush'; object: ChainRef | SetRef | MapRef; edit?: ChainEdit }
  | { verb: 'delete'; object: ChainRef | SetRef | MapRef | RuleRef | Element };

/**
 * A chain flushed and refilled whose rules are mostly the ones it holds (a policy added to or taken
 * from a pod's chain): the flush is followed by `rules` additions of the chain's new rules, the first
 * `keep` and the last `tail` of which are the first `keep` and last `tail` of the rules it holds now
 * (`was`: their comments, in order). A transport that can edit a chain by rule handles (netlink) may
 * delete the rules between and insert the new ones between instead, after checking that the chain
 * holds `was`; the end state is the same, the kept rules keep their counters, and the batch carries
 * the change rather than the chain. Any other transport runs the flush and the additions.
 */
export interface ChainEdit {
  was: readonly (string | undefined)[];
  keep: number;
  tail: number;
  rules: number;
}

/** Names a layout owns, declared (never derived from other names): those starting with a prefix, and
 * exact names. */
export interface Ownership {
  prefixes: readonly string[];
  names: readonly string[];
}

export function owns(o: Ownership, name: string): boolean {
  return o.names.includes(name) || o.prefixes.some((p) => name.startsWith(p));
}

export interface TransactionOptions {
  /** When set, every chain, set and map the transaction names must start with it (e.g. "agent-"). */
  ownedPrefix?: string;
  /** When set, every chain, set and map the transaction names must be owned by it. */
  owner?: Ownership;
  /**
   * The caller's objects are kept as they are, not copied: for a caller whose objects never change
   * once made (a layout's applied state, which its diffs rely on being unchanged). A rebuild at 50,000
   * pods copied 14,000 rules it already held (MBs, at the agent's memory peak).
   */
  shareObjects?: boolean;
}

export class Transaction {
  readonly ownedPrefix: string | undefined;
  readonly owner: Ownership | undefined;
  private readonly ops: Operation[] = [];
  private readonly share: boolean;

  constructor(options: TransactionOptions = {}) {
    this.ownedPrefix = options.ownedPrefix;
    this.owner = options.owner;
    this.share = options.shareObjects ?? false;
  }

  /** Ensures the object exists (`nft add`): existing tables, chains, sets and elements are left as
   * they are; a rule is appended (or put after the rule with `handle`). */
  add(object: NftObject): this {
    return this.push({ verb: 'add', object });
  }

  /** Like add, but fails the transaction when the object exists already. */
  create(object: Table | Chain | NftSet | NftMap | Element): this {
    if ((object as NftObject).kind === 'rule')
      throw new NftObjectError('create is not an operation on rules: use add or insert');
    return this.push({ verb: 'create', object });
  }

  /** Puts a rule first in its chain (or before the rule with `handle`). */
  insert(rule: Rule): this {
    if (rule.kind !== 'rule') throw new NftObjectError('insert takes a rule');
    return this.push({ verb: 'insert', object: rule });
  }

  /** Replaces the rule with `handle`. */
  replace(rule: Rule & { handle: number }): this {
    if (rule.kind !== 'rule' || rule.handle === undefined)
      throw new NftObjectError('replace takes a rule with a handle');
    return this.push({ verb: 'replace', object: rule });
  }

  /** Removes every rule of a chain, or every element of a set or map. A chain's `edit` says which
   * of its rules the additions that follow keep (ChainEdit). */
  flush(object: ChainRef | SetRef | MapRef, edit?: ChainEdit): this {
    const kind = (object as { kind: string }).kind;
    if (kind !== 'chain' && kind !== 'set' && kind !== 'map')
      throw new NftObjectError(`flush ${kind} is not supported: only chains, sets and maps are flushed`);
    if (edit !== undefined) {
      if (kind !== 'chain') throw new NftObjectError('only a chain is edited');
      const { keep, tail, rules, was } = edit;
      if (![keep, tail, rules].every((n) => Number.isInteger(n) && n >= 0) || keep + tail > Math.min(rules, was.length))
        throw new NftObjectError(`invalid chain edit (keep ${keep}, tail ${tail} of ${was.length} → ${rules})`);
      return this.push({ verb: 'flush', object, edit: Object.freeze({ ...edit, was: Object.freeze([...was]) }) });
    }
    return this.push({ verb: 'flush', object });
  }

  /** Deletes a chain (empty and unreferenced), a set or map (unreferenced), a rule by handle, or an
   * element by key. */
  delete(object: ChainRef | SetRef | MapRef | RuleRef | Element): this {
    const kind = (object as { kind: string }).kind;
    if (kind === 'table')
      throw new NftObjectError('deleting the table is not supported: it holds objects of other owners');
    if (kind === 'rule' && (object as RuleRef).handle === undefined)
      throw new NftObjectError('delete rule needs the rule handle');
    return this.push({ verb: 'delete', object });
  }

  /** Appends another transaction's operations (those from `from` to before `to`: a large one is
   * appended in slices), in order (their names checked as if added here).
   * They are that transaction's checked private copies, never changed: shared, not copied again (a
   * rebuild at 50,000 pods appends 64,000 of them). */
  append(other: Transaction, from = 0, to = other.operations.length): this {
    const ops = other.operations;
    for (let i = from; i < to && i < ops.length; i++) this.push(ops[i] as Operation, true);
    return this;
  }

  get operations(): readonly Operation[] {
    return this.ops;
  }

  get empty(): boolean {
    return this.ops.length === 0;
  }

  /** The `nft -f` script: one command per line, in the order added. */
  render(table: TableRef = STRAND_TABLE): string {
    checkTableRef(table);
    return this.ops.map((op) => `${renderOperation(op.verb, op.object, table)}\n`).join('');
  }

  private push(op: Operation, checked = false): this {
    const obj = op.object;
    // An appended operation was checked and copied by the transaction it comes from: only this
    // one's names are left to check.
    // A shared object checked before by a sharing transaction is the same (unchanged) object: a
    // pod's chain refilled keeps most of its rules as the last render's objects (policy/render.ts).
    const shareRule = this.share && op.verb === 'add' && op.object.kind === 'rule';
    if (!checked && !(shareRule && CHECKED.has(op.object))) {
      checkOperation(op);
      if (shareRule) CHECKED.add(op.object);
    }
    const name = nameOf(obj);
    if (this.ownedPrefix !== undefined && name !== undefined && !name.startsWith(this.ownedPrefix)) {
      throw new NftObjectError(
        `${op.verb} ${obj.kind} ${name}: this transaction only touches objects named ${this.ownedPrefix}*`,
      );
    }
    if (this.owner !== undefined && name !== undefined && !owns(this.owner, name)) {
      const named = [...this.owner.prefixes.map((p) => `${p}*`), ...this.owner.names].join(', ');
      throw new NftObjectError(`${op.verb} ${obj.kind} ${name}: this transaction only touches objects named ${named}`);
    }
    // Copy, so a caller changing its object afterwards cannot change the transaction; an element
    // frozen whole cannot change, and is shared (a set of 50,000 addresses is 50,000 clones else).
    const keep = checked || this.share || frozenElement(obj);
    this.ops.push(keep ? op : ({ ...op, object: structuredClone(obj) } as Operation));
    return this;
  }
}

/** Rules a sharing transaction checked (whose owners never change them: shareObjects). */
const CHECKED = new WeakSet<object>();

function frozenElement(obj: Operation['object']): boolean {
  return (
    obj.kind === 'element' &&
    Object.isFrozen(obj) &&
    Object.isFrozen(obj.key) &&
    (obj.value === undefined || Object.isFrozen(obj.value))
  );
}

/** Checks an operation's object as its verb needs it (a name and handle, or the whole object). */
function checkOperation(op: Operation): void {
  const obj = op.object;
  if (
    op.verb === 'flush' ||
    (op.verb === 'delete' && (obj.kind === 'chain' || obj.kind === 'set' || obj.kind === 'map'))
  ) {
    checkName(obj.kind, (obj as ChainRef | SetRef | MapRef).name);
  } else if (op.verb === 'delete' && obj.kind === 'rule') {
    checkName('chain', obj.chain);
    checkHandle('rule', obj.handle);
  } else {
    checkObject(obj as NftObject);
  }
}

/** The chain, set or map an operation acts on (undefined for the table). */
export function nameOf(obj: Operation['object']): string | undefined {
  switch (obj.kind) {
    case 'table':
      return undefined;
    case 'rule':
      return obj.chain;
    case 'element':
      return obj.set;
    default:
      return obj.name;
  }
}

export type { Verb };

/**
 * What a transaction does, for operations and log lines: "apply nftables transaction (3 commands) to
 * table inet strand".
 */
export function describeTransaction(tx: Transaction, table: TableRef, verb = 'apply'): string {
  const n = tx.operations.length;
  return `${verb} nftables transaction (${n} command${n === 1 ? '' : 's'}) to table ${table.family} ${table.name}`;
}
