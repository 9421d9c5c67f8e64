// RFC 6962 Merkle tree hashing for the audit log: tree heads, inclusion proofs (audit paths) and
// consistency proofs, generation and verification. Pure; SHA-256 from @noble/hashes.
//
// Hashing (RFC 6962 section 2.1): MTH({}) = SHA-256(""), leaf = SHA-256(0x00 || d),
// node = SHA-256(0x01 || left || right), where a list of n > 1 leaves splits at k, the largest power of
// two smaller than n. Proof generation follows RFC 6962 2.1.1 (PATH) and 2.1.2 (PROOF/SUBPROOF);
// verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2, which state the same checks iteratively.
//
// Storage model: a tree is read through complete, aligned subtrees ("nodes"): node (level, index)
// is the root of leaves [index * 2^level, (index + 1) * 2^level). Every range hash the RFC recursions
// need is a fold of such nodes (its compact range), so a store that keeps every complete node (about
// 2n hashes) answers tree heads and proofs with O(log^2 n) lookups. Generators therefore first return a
// *plan* (which nodes to fold for each proof element), the caller fetches those nodes in one query, and
// `resolvePlan` folds them. Sizes and indices are plain numbers up to 2^53 - 1 (no 32-bit bit tricks).
import { sha256 } from '@noble/hashes/sha2.js';
import { TensorGuardError, describe } from '../errors.ts';
import { equalBytes } from '../bytes.ts';

export const HASH_SIZE = 32;

/** A proof that does not verify, or a tree that does not match a head: the log is inconsistent. */
export class ProofInvalidError extends TensorGuardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super({ message, code: 'proof_invalid', status: 409, details });
    this.name = 'ProofInvalidError';
  }
}

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** SHA-256 of the empty string: the root of the empty tree. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** RFC 6962 leaf hash: SHA-256(0x00 || data). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError(`"data" expected Uint8Array, got ${describe(data)}`);
  return sha256.create().update(LEAF_PREFIX).update(data).digest();
}

/** RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256.create().update(NODE_PREFIX).update(left).update(right).digest();
}

function checkSize(name: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`"${name}" expected integer >= ${min}, got ${describe(v)}`);
  return v;
}

function checkHash(name: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== HASH_SIZE) throw new ProofInvalidError(`${name} must be a ${HASH_SIZE}-byte hash, got ${describe(v)}`);
  return v;
}

/** Largest power of two strictly smaller than n (n >= 2): RFC 6962's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A complete aligned subtree: leaves [index * 2^level, (index + 1) * 2^level). */
export interface NodeId {
  level: number;
  index: number;
}

/** Reads the hash of a complete subtree. Must throw (not return junk) for a node it does not hold. */
export type NodeReader = (node: NodeId) => Uint8Array;

/**
 * The complete subtrees whose fold is MTH(D[start:end]), left to right. Requires that `start` is a
 * multiple of a power of two >= end - start, which holds for the tree itself and for every range the
 * RFC 6962 recursions visit.
 */
export function rangeNodes(options: { start: number; end: number }): NodeId[] {
  const { start, end } = options;
  const out: NodeId[] = [];
  let at = start;
  while (at < end) {
    let size = 1;
    let level = 0;
    // Largest aligned block starting at `at` that still fits.
    while (at % (size * 2) === 0 && at + size * 2 <= end) {
      size *= 2;
      level++;
    }
    out.push({ level, index: at / size });
    at += size;
  }
  return out;
}

/** Folds a compact range (left-to-right complete subtree hashes) into its RFC 6962 root. */
export function foldRange(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return emptyRoot();
  let root = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) root = hashChildren(hashes[i]!, root);
  return root;
}

/** A proof element = the fold of these nodes. A plan lists the elements in proof order. */
export type ProofPlan = NodeId[][];

/** Which nodes form the tree head of `size` leaves. */
export function rootPlan(options: { size: number }): NodeId[] {
  return rangeNodes({ start: 0, end: checkSize('size', options.size) });
}

/** RFC 6962 2.1.1 PATH(m, D[n]) as a plan. */
export function inclusionPlan(options: { index: number; size: number }): ProofPlan {
  const size = checkSize('size', options.size, 1);
  const index = checkSize('index', options.index);
  if (index >= size) throw new RangeError(`"index" expected integer < size ${size}, got ${index}`);
  const plan: ProofPlan = [];
  const path = (m: number, lo: number, hi: number): void => {
    if (hi - lo === 1) return;
    const k = splitPoint(hi - lo);
    if (m < k) {
      path(m, lo, lo + k);
      plan.push(rangeNodes({ start: lo + k, end: hi }));
    } else {
      path(m - k, lo + k, hi);
      plan.push(rangeNodes({ start: lo, end: lo + k }));
    }
  };
  path(index, 0, size);
  return plan;
}

/** RFC 6962 2.1.2 PROOF(m, D[n]) as a plan; empty for m = 0 or m = n. */
export function consistencyPlan(options: { from: number; to: number }): ProofPlan {
  const to = checkSize('to', options.to);
  const from = checkSize('from', options.from);
  if (from > to) throw new RangeError(`"from" expected integer <= to ${to}, got ${from}`);
  const plan: ProofPlan = [];
  if (from === 0 || from === to) return plan;
  const subproof = (m: number, lo: number, hi: number, whole: boolean): void => {
    const n = hi - lo;
    if (m === n) {
      if (!whole) plan.push(rangeNodes({ start: lo, end: hi }));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      subproof(m, lo, lo + k, whole);
      plan.push(rangeNodes({ start: lo + k, end: hi }));
    } else {
      subproof(m - k, lo + k, hi, false);
      plan.push(rangeNodes({ start: lo, end: lo + k }));
    }
  };
  subproof(from, 0, to, true);
  return plan;
}

/** Every distinct node a plan reads (for fetching them in one query). */
export function planNodes(plan: ProofPlan | NodeId[]): NodeId[] {
  const seen = new Map<string, NodeId>();
  for (const item of plan as Array<NodeId | NodeId[]>) for (const node of Array.isArray(item) ? item : [item]) seen.set(`${node.level}:${node.index}`, node);
  return [...seen.values()];
}

export function resolvePlan(options: { plan: ProofPlan; node: NodeReader }): Uint8Array[] {
  return options.plan.map((nodes) => foldRange(nodes.map(options.node)));
}

/**
 * A NodeReader over leaf hashes held in memory: complete subtree hashes computed on demand and
 * memoized. Good for tests, vectors and small trees; servers read stored nodes instead.
 */
export function memoryNodeReader(options: { leafHashes: readonly Uint8Array[] }): NodeReader {
  const { leafHashes } = options;
  const memo = new Map<string, Uint8Array>();
  const read = (node: NodeId): Uint8Array => {
    const width = 2 ** node.level;
    if ((node.index + 1) * width > leafHashes.length) throw new RangeError(`node ${node.level}/${node.index} lies beyond ${leafHashes.length} leaves`);
    if (node.level === 0) return leafHashes[node.index]!;
    const key = `${node.level}:${node.index}`;
    let h = memo.get(key);
    if (!h) {
      h = hashChildren(read({ level: node.level - 1, index: node.index * 2 }), read({ level: node.level - 1, index: node.index * 2 + 1 }));
      memo.set(key, h);
    }
    return h;
  };
  return read;
}

/** MTH of the first `size` leaves. */
export function treeRoot(options: { size: number; node: NodeReader }): Uint8Array {
  return foldRange(rootPlan({ size: options.size }).map(options.node));
}

export function inclusionProof(options: { index: number; size: number; node: NodeReader }): Uint8Array[] {
  return resolvePlan({ plan: inclusionPlan(options), node: options.node });
}

export function consistencyProof(options: { from: number; to: number; node: NodeReader }): Uint8Array[] {
  return resolvePlan({ plan: consistencyPlan(options), node: options.node });
}

/** MTH over leaf hashes held in memory (iterative, no memo: one pass per level). */
export function rootFromLeafHashes(leafHashes: readonly Uint8Array[]): Uint8Array {
  const range = new CompactRange();
  for (const h of leafHashes) range.append(h);
  return range.root();
}

/**
 * RFC 9162 2.1.3.2: recompute the root from a leaf hash and its audit path; throws ProofInvalidError
 * unless it equals `root`.
 */
export function verifyInclusion(options: { index: number; size: number; leafHash: Uint8Array; proof: readonly Uint8Array[]; root: Uint8Array }): void {
  const root = checkHash('root', options.root);
  const computed = rootFromInclusionProof(options);
  if (!equalBytes(computed, root)) throw new ProofInvalidError('inclusion proof does not lead to the tree head', { index: options.index, size: options.size });
}

export function rootFromInclusionProof(options: { index: number; size: number; leafHash: Uint8Array; proof: readonly Uint8Array[] }): Uint8Array {
  const size = checkSize('size', options.size);
  const index = checkSize('index', options.index);
  if (index >= size) throw new ProofInvalidError(`leaf index ${index} is not below the tree size ${size}`);
  let r = checkHash('leaf hash', options.leafHash);
  let fn = index;
  let sn = size - 1;
  for (const [i, p] of options.proof.entries()) {
    checkHash(`proof[${i}]`, p);
    if (sn === 0) throw new ProofInvalidError('inclusion proof is longer than the path for this tree size');
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofInvalidError('inclusion proof is shorter than the path for this tree size');
  return r;
}

/**
 * RFC 9162 2.1.4.2: checks that the tree of `to` leaves with root `toRoot` extends the tree of `from`
 * leaves with root `fromRoot`. Throws ProofInvalidError otherwise.
 */
export function verifyConsistency(options: { from: number; to: number; fromRoot: Uint8Array; toRoot: Uint8Array; proof: readonly Uint8Array[] }): void {
  const from = checkSize('from', options.from);
  const to = checkSize('to', options.to);
  const fromRoot = checkHash('first root', options.fromRoot);
  const toRoot = checkHash('second root', options.toRoot);
  const proof = options.proof;
  proof.forEach((p, i) => checkHash(`proof[${i}]`, p));
  if (from > to) throw new ProofInvalidError(`tree size ${to} is smaller than the earlier size ${from} (the log shrank)`, { from, to });
  if (from === to) {
    if (proof.length !== 0) throw new ProofInvalidError('a consistency proof between equal sizes must be empty');
    if (!equalBytes(fromRoot, toRoot)) throw new ProofInvalidError(`two different roots for the same tree size ${from}`, { size: from });
    return;
  }
  if (from === 0) {
    if (proof.length !== 0) throw new ProofInvalidError('a consistency proof from the empty tree must be empty');
    return;
  }
  if (proof.length === 0) throw new ProofInvalidError('empty consistency proof between different tree sizes');
  const path = isPowerOfTwo(from) ? [fromRoot, ...proof] : [...proof];
  let fn = from - 1;
  let sn = to - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofInvalidError('consistency proof is longer than needed');
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofInvalidError('consistency proof is shorter than needed');
  if (!equalBytes(fr, fromRoot)) throw new ProofInvalidError(`consistency proof does not reproduce the earlier root at size ${from}`, { from, to });
  if (!equalBytes(sr, toRoot)) throw new ProofInvalidError(`consistency proof does not reproduce the new root at size ${to}`, { from, to });
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1 && x % 2 === 0) x /= 2;
  return x === 1;
}

/**
 * The compact range [0, size): the roots of the complete subtrees that make up the tree (one per set
 * bit of size, largest first). Appending a leaf merges equal-sized neighbours, so a client that keeps
 * it can extend a verified head with new leaves without the old ones (transparency-dev/merkle
 * "compact ranges").
 */
export class CompactRange {
  #size: number;
  readonly #hashes: Uint8Array[];

  constructor(options: { size?: number; hashes?: readonly Uint8Array[] } = {}) {
    const size = checkSize('size', options.size ?? 0);
    const hashes = [...(options.hashes ?? [])];
    const expected = rangeNodes({ start: 0, end: size }).length;
    if (hashes.length !== expected) throw new RangeError(`"hashes" expected ${expected} subtree hashes for size ${size}, got ${hashes.length}`);
    hashes.forEach((h, i) => checkHash(`hashes[${i}]`, h));
    this.#size = size;
    this.#hashes = hashes;
  }

  get size(): number {
    return this.#size;
  }

  get hashes(): readonly Uint8Array[] {
    return this.#hashes;
  }

  append(leafHash: Uint8Array): void {
    let h = checkHash('leaf hash', leafHash);
    // Merge while the new subtree completes a pair: once per trailing 1 bit of the old size.
    let n = this.#size;
    while (n % 2 === 1) {
      h = hashChildren(this.#hashes.pop()!, h);
      n = Math.floor(n / 2);
    }
    this.#hashes.push(h);
    this.#size++;
  }

  root(): Uint8Array {
    return foldRange(this.#hashes);
  }
}
