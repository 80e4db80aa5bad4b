// The nftables client interface (after knftables' interface.go): one table, transactions applied all or
// nothing, the table read back, and the rules' counters. Implementations: nf_tables netlink in process
// (netlink/transport.ts, the agent's), the `nft` binary (runner.ts, the tests' and people's), and the
// in-memory fake (fake.ts); callers take an NftTransport.
import type { TableRef, TableState } from './objects.ts';
import type { Transaction } from './transaction.ts';

/** An nftables client for one table: the `nft` process (runner.ts) or the in-memory fake (fake.ts). */
export interface NftTransport {
  readonly table: TableRef;
  /** Applies the transaction, all of it or none of it; an empty transaction does nothing. */
  run(tx: Transaction): Promise<void>;
  /**
   * run() for a large transaction without holding the event loop: it is prepared (encoded) a slice
   * of `sliceMs` at a time, awaiting `breathe` between slices, then committed whole in one go, as
   * run(). Says how large it was as sent. Where missing, callers use run().
   */
  runSliced?(tx: Transaction, breathe: () => Promise<void>, sliceMs?: number): Promise<SentBatch>;
  /** Checks the transaction against the current state without applying it (`nft --check`). */
  check(tx: Transaction): Promise<void>;
  /**
   * The table's current state; `exists: false` and nothing else when there is no table. With `only`,
   * just those chains (with their rules) and sets or maps are read, each listed by itself: the whole
   * table's JSON is megabytes once NetworkPolicy rules are in it (bench/nft-read.mjs times it).
   */
  list(only?: ListOnly): Promise<TableState>;
  /**
   * A cheap look at the table: its chains' names and handles (no rules) and the rules' comments of
   * the chains named (missing chains are left out). Small listings instead of the whole table, whose
   * JSON is megabytes once policy rules are in it (policy drift checks run on every pass).
   */
  summary(chains: readonly string[]): Promise<TableSummary>;
  /**
   * The counters of the rules that have one, in the chains named (every chain of the table without
   * `chains`), in chain order. Missing chains are left out.
   */
  counters(chains?: readonly string[]): Promise<RuleCounter[]>;
  /** The cheap drift reads (generation and per-chain digests), where the transport has them. */
  readonly probe?: DriftProbe;
  /**
   * `a` encoded now to be run later with its stand-in addresses replaced (a pod-start bind computed
   * before the pod has an address): `b` is the same transaction with each pair's `b` where `a` has
   * the pair's `a`. Undefined when the addresses cannot be found in the encoding alone (the caller
   * then runs the transaction with the real addresses). Where missing, callers run().
   */
  template?(a: Transaction, b: Transaction, standins: readonly StandinPair[]): TransactionTemplate | undefined;
}

/** One family's two stand-in addresses of a template (see NftTransport.template). */
export interface StandinPair {
  a: string;
  b: string;
}

/** A transaction encoded ahead (NftTransport.template). */
export interface TransactionTemplate {
  /**
   * Applies the transaction with each stand-in `a` replaced by `real.get(a)`, as run() would, all or
   * nothing; undefined, sending nothing, when the template no longer fits (the transport committed
   * something since it was made, an address is missing or of another family).
   */
  run(real: ReadonlyMap<string, string>): SentBatch | undefined;
}

/**
 * What the drift check reads: first the namespace's nf_tables generation (one small request: equal
 * means no one committed anything), and only when it moved, one snapshot of the table's rules.
 */
export interface DriftProbe {
  generation(): Promise<number>;
  snapshot(): Promise<TableSnapshot>;
  /** The digests of these chains only (one filtered dump each); a chain without rules has none. */
  chainDigests?(chains: readonly string[]): Promise<Map<string, ChainDigest>>;
}

/** One chain's rules in a word: how many, and a digest of their handles, expressions and comments. */
export interface ChainDigest {
  count: number;
  digest: string;
}

export interface TableSnapshot {
  /** The generation the snapshot was read at. */
  generation: number;
  exists: boolean;
  chains: Set<string>;
  /** Sets and maps. */
  sets: Set<string>;
  /** Chains with rules only: an empty chain is in `chains` and not here. */
  digests: Map<string, ChainDigest>;
}

/** What runSliced sent: netlink messages and bytes, and where its time went. */
export interface SentBatch {
  messages: number;
  bytes: number;
  /** Mapping and encoding the operations, yields included. */
  encodeMs: number;
  /** The one send that commits the batch (the kernel's work) and its answer. */
  commitMs: number;
  /** Slices the encoding took (1: no yield). */
  slices: number;
}

export interface ListOnly {
  chains?: readonly string[];
  /** Sets or maps. */
  sets?: readonly string[];
}

export interface TableSummary {
  exists: boolean;
  /** Chain name → handle. */
  chains: Map<string, number>;
  /** Chain name (of those asked for) → its rules' comments, in order ("" for a rule without one). */
  rules: Map<string, string[]>;
}

/** One rule's counter statement, as counters() reads it. */
export interface RuleCounter {
  chain: string;
  handle: number;
  /** The rule's comment: how callers know their rules (bodies are not compared for this). */
  comment?: string;
  packets: number;
  bytes: number;
}

/** The name the callers knew the interface by. */
export type Nft = NftTransport;
