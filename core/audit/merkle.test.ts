// RFC 6962 Merkle hashing against vectors nobody here wrote (transparency-dev/merkle's published
// vectors and the RFC's own 7-leaf examples), then every size and index up to 40 against a
// from-the-definition reference, and the corruptions transparency-dev's verifier tests apply.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '../bytes.ts';
import {
  CompactRange,
  consistencyPlan,
  consistencyProof,
  emptyRoot,
  hashChildren,
  hashLeaf,
  inclusionPlan,
  inclusionProof,
  memoryNodeReader,
  planNodes,
  rootFromInclusionProof,
  rootFromLeafHashes,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
} from './merkle.ts';

const VECTORS = resolve(import.meta.dirname, '../../tests/vectors/rfc6962');
const td = JSON.parse(readFileSync(resolve(VECTORS, 'transparency-dev-merkle.json'), 'utf8')) as {
  leafInputs: string[];
  nodeHashes: string[][];
  rootHashesBySize: string[];
  inclusionProofs: Array<{ leafIndex: number; treeSize: number; proof: string[] }>;
  consistencyProofs: Array<{ size1: number; size2: number; proof: string[] }>;
};
const rfc = JSON.parse(readFileSync(resolve(VECTORS, 'rfc6962-section-2.1.3.json'), 'utf8')) as {
  treeSize: number;
  labels: Record<string, { level: number; index: number } | { range: [number, number] }>;
  auditPaths: Array<{ leafIndex: number; path: string[] }>;
  consistencyProofs: Array<{ size1: number; size2: number; proof: string[] }>;
};

const h = (x: string) => hexToBytes(x);
const hx = (xs: readonly Uint8Array[]) => xs.map(bytesToHex);
const leafHashes = td.leafInputs.map((x) => hashLeaf(h(x)));
const reader = memoryNodeReader({ leafHashes });

/** MTH straight from RFC 6962 section 2.1's recursive definition. */
function referenceRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return hashChildren(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

function flipBit(bytes: Uint8Array, mask: number): Uint8Array {
  const out = bytes.slice();
  out[0]! ^= mask;
  return out;
}

const someHash = h('abacaba000000000000000000000000000000000000000000060061e00123456');

describe('RFC 6962 hashing (transparency-dev/merkle vectors)', () => {
  it('hashes the empty tree, leaves and every complete subtree', () => {
    expect(bytesToHex(emptyRoot())).toBe(td.rootHashesBySize[0]);
    expect(hx(leafHashes)).toEqual(td.nodeHashes[0]);
    td.nodeHashes.forEach((level, l) => level.forEach((hash, i) => expect(bytesToHex(reader({ level: l, index: i }))).toBe(hash)));
  });

  it('computes the tree head for every size 0..8, three ways', () => {
    for (let size = 0; size <= 8; size++) {
      expect(bytesToHex(treeRoot({ size, node: reader }))).toBe(td.rootHashesBySize[size]);
      expect(bytesToHex(rootFromLeafHashes(leafHashes.slice(0, size)))).toBe(td.rootHashesBySize[size]);
      expect(bytesToHex(referenceRoot(leafHashes.slice(0, size)))).toBe(td.rootHashesBySize[size]);
    }
  });

  it('generates and verifies the published audit paths', () => {
    for (const v of td.inclusionProofs) {
      const proof = inclusionProof({ index: v.leafIndex, size: v.treeSize, node: reader });
      expect(hx(proof)).toEqual(v.proof);
      verifyInclusion({ index: v.leafIndex, size: v.treeSize, leafHash: leafHashes[v.leafIndex]!, proof: v.proof.map(h), root: h(td.rootHashesBySize[v.treeSize]!) });
    }
  });

  it('generates and verifies the published consistency proofs', () => {
    for (const v of td.consistencyProofs) {
      expect(hx(consistencyProof({ from: v.size1, to: v.size2, node: reader }))).toEqual(v.proof);
      verifyConsistency({ from: v.size1, to: v.size2, fromRoot: h(td.rootHashesBySize[v.size1]!), toRoot: h(td.rootHashesBySize[v.size2]!), proof: v.proof.map(h) });
    }
  });

  it('refuses every corruption of the published audit paths (transparency-dev corruptInclusionProof)', () => {
    for (const v of td.inclusionProofs.filter((x) => x.treeSize > 1)) {
      const root = h(td.rootHashesBySize[v.treeSize]!);
      const leaf = leafHashes[v.leafIndex]!;
      const proof = v.proof.map(h);
      const probes: Array<[string, number, number, Uint8Array, Uint8Array[], Uint8Array]> = [
        ['index - 1', v.leafIndex - 1, v.treeSize, leaf, proof, root],
        ['index + 1', v.leafIndex + 1, v.treeSize, leaf, proof, root],
        ['index ^ 2', v.leafIndex ^ 2, v.treeSize, leaf, proof, root],
        ['size * 2', v.leafIndex, v.treeSize * 2, leaf, proof, root],
        ['size / 2', v.leafIndex, Math.floor(v.treeSize / 2), leaf, proof, root],
        ['wrong leaf', v.leafIndex, v.treeSize, new TextEncoder().encode('WrongLeaf'), proof, root],
        ['empty root', v.leafIndex, v.treeSize, leaf, proof, emptyRoot()],
        ['random root', v.leafIndex, v.treeSize, leaf, proof, someHash],
        ['trailing garbage', v.leafIndex, v.treeSize, leaf, [...proof, new Uint8Array(0)], root],
        ['trailing root', v.leafIndex, v.treeSize, leaf, [...proof, root], root],
        ['preceding garbage', v.leafIndex, v.treeSize, leaf, [new Uint8Array(0), ...proof], root],
        ['preceding root', v.leafIndex, v.treeSize, leaf, [root, ...proof], root],
        ...proof.map((_, i) => [`modified proof[${i}]`, v.leafIndex, v.treeSize, leaf, proof.map((p, j) => (j === i ? flipBit(p, 8) : p)), root] as [string, number, number, Uint8Array, Uint8Array[], Uint8Array]),
        ['removed component', v.leafIndex, v.treeSize, leaf, proof.slice(0, -1), root],
      ];
      if (proof.length > 1) probes.push(['inserted component', v.leafIndex, v.treeSize, leaf, [proof[0]!, someHash, ...proof.slice(1)], root]);
      for (const [desc, index, size, leafHash, p, r] of probes) {
        expect(() => verifyInclusion({ index, size, leafHash, proof: p, root: r }), desc).toThrow();
      }
    }
  });

  it('refuses every corruption of the published consistency proofs (transparency-dev corruptConsistencyProof)', () => {
    for (const v of td.consistencyProofs.filter((x) => x.proof.length > 0)) {
      const r1 = h(td.rootHashesBySize[v.size1]!);
      const r2 = h(td.rootHashesBySize[v.size2]!);
      const proof = v.proof.map(h);
      const wrong = new TextEncoder().encode('WrongRoot');
      const probes: Array<[string, number, number, Uint8Array, Uint8Array, Uint8Array[]]> = [
        ['size1 - 1', v.size1 - 1, v.size2, r1, r2, proof],
        ['size1 + 1', v.size1 + 1, v.size2, r1, r2, proof],
        ['size1 ^ 2', v.size1 ^ 2, v.size2, r1, r2, proof],
        ['size2 * 2', v.size1, v.size2 * 2, r1, r2, proof],
        ['size2 / 2', v.size1, Math.floor(v.size2 / 2), r1, r2, proof],
        ['wrong root1', v.size1, v.size2, wrong, r2, proof],
        ['wrong root2', v.size1, v.size2, r1, wrong, proof],
        ['swapped roots', v.size1, v.size2, r2, r1, proof],
        ['empty proof', v.size1, v.size2, r1, r2, []],
        ['trailing garbage', v.size1, v.size2, r1, r2, [...proof, new Uint8Array(0)]],
        ['trailing root1', v.size1, v.size2, r1, r2, [...proof, r1]],
        ['trailing root2', v.size1, v.size2, r1, r2, [...proof, r2]],
        ['preceding garbage', v.size1, v.size2, r1, r2, [new Uint8Array(0), ...proof]],
        ['preceding root1', v.size1, v.size2, r1, r2, [r1, ...proof]],
        ['preceding root2', v.size1, v.size2, r1, r2, [r2, ...proof]],
        ['preceding proof[0]', v.size1, v.size2, r1, r2, [proof[0]!, ...proof]],
        ['truncated proof', v.size1, v.size2, r1, r2, proof.slice(0, -1)],
        ...proof.map((_, i) => [`modified proof[${i}]`, v.size1, v.size2, r1, r2, proof.map((p, j) => (j === i ? flipBit(p, 16) : p))] as [string, number, number, Uint8Array, Uint8Array, Uint8Array[]]),
      ];
      for (const [desc, from, to, fromRoot, toRoot, p] of probes) {
        expect(() => verifyConsistency({ from, to, fromRoot, toRoot, proof: p }), desc).toThrow();
      }
    }
  });

  it('handles the trivial consistency cases as transparency-dev does', () => {
    const e = emptyRoot();
    verifyConsistency({ from: 0, to: 0, fromRoot: e, toRoot: e, proof: [] });
    verifyConsistency({ from: 0, to: 1, fromRoot: e, toRoot: someHash, proof: [] });
    verifyConsistency({ from: 1, to: 1, fromRoot: someHash, toRoot: someHash, proof: [] });
    expect(() => verifyConsistency({ from: 1, to: 1, fromRoot: e, toRoot: someHash, proof: [] })).toThrow(/two different roots/);
    expect(() => verifyConsistency({ from: 2, to: 1, fromRoot: e, toRoot: someHash, proof: [] })).toThrow(/shrank/);
    expect(() => verifyConsistency({ from: 1, to: 2, fromRoot: e, toRoot: someHash, proof: [] })).toThrow(/empty consistency proof/);
    expect(() => verifyConsistency({ from: 0, to: 1, fromRoot: e, toRoot: e, proof: [e] })).toThrow();
    expect(() => verifyConsistency({ from: 1, to: 1, fromRoot: e, toRoot: e, proof: [e] })).toThrow();
  });
});

describe('RFC 6962 section 2.1.3: the 7-leaf examples', () => {
  const seven = leafHashes.slice(0, rfc.treeSize);
  const sevenReader = memoryNodeReader({ leafHashes: seven });
  const label = (name: string): string => {
    const l = rfc.labels[name]!;
    return bytesToHex('range' in l ? referenceRoot(seven.slice(l.range[0], l.range[1])) : sevenReader(l));
  };

  it('l is hash(i, j) as the RFC draws it', () => {
    expect(label('l')).toBe(bytesToHex(hashChildren(h(label('i')), h(label('j')))));
  });

  it('audit paths: d0 [b h l], d3 [c g l], d4 [f j k], d6 [i k]', () => {
    const root = treeRoot({ size: 7, node: sevenReader });
    for (const v of rfc.auditPaths) {
      const proof = inclusionProof({ index: v.leafIndex, size: rfc.treeSize, node: sevenReader });
      expect(hx(proof)).toEqual(v.path.map(label));
      verifyInclusion({ index: v.leafIndex, size: rfc.treeSize, leafHash: seven[v.leafIndex]!, proof, root });
    }
  });

  it('consistency proofs: (3,7) [c d g l], (4,7) [l], (6,7) [i j k]', () => {
    for (const v of rfc.consistencyProofs) {
      const proof = consistencyProof({ from: v.size1, to: v.size2, node: sevenReader });
      expect(hx(proof)).toEqual(v.proof.map(label));
      verifyConsistency({ from: v.size1, to: v.size2, fromRoot: referenceRoot(seven.slice(0, v.size1)), toRoot: referenceRoot(seven), proof });
    }
  });
});

describe('every tree up to 40 leaves against the recursive definition', () => {
  const leaves = Array.from({ length: 40 }, (_, i) => hashLeaf(new TextEncoder().encode(`leaf ${i}`)));
  const node = memoryNodeReader({ leafHashes: leaves });

  it('roots, audit paths and consistency proofs verify for every (index, size) and (from, to)', () => {
    const roots = Array.from({ length: 41 }, (_, n) => referenceRoot(leaves.slice(0, n)));
    const range = new CompactRange();
    for (let n = 1; n <= 40; n++) {
      range.append(leaves[n - 1]!);
      expect(bytesToHex(range.root())).toBe(bytesToHex(roots[n]!));
      expect(bytesToHex(treeRoot({ size: n, node }))).toBe(bytesToHex(roots[n]!));
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof({ index: m, size: n, node });
        expect(bytesToHex(rootFromInclusionProof({ index: m, size: n, leafHash: leaves[m]!, proof }))).toBe(bytesToHex(roots[n]!));
        if (n > 1) expect(() => verifyInclusion({ index: m, size: n, leafHash: leaves[(m + 1) % n]!, proof, root: roots[n]! })).toThrow(/inclusion/);
      }
      for (let m = 0; m <= n; m++) {
        const proof = consistencyProof({ from: m, to: n, node });
        verifyConsistency({ from: m, to: n, fromRoot: roots[m]!, toRoot: roots[n]!, proof });
        if (m > 0 && m < n) expect(() => verifyConsistency({ from: m, to: n, fromRoot: roots[m - 1]!, toRoot: roots[n]!, proof })).toThrow();
      }
    }
  });

  it('plans read O(log^2 n) nodes even for large trees', () => {
    const n = 1_000_003;
    expect(planNodes(inclusionPlan({ index: 777_777, size: n })).length).toBeLessThanOrEqual(60);
    expect(planNodes(consistencyPlan({ from: 654_321, to: n })).length).toBeLessThanOrEqual(60);
  });

  it('a compact range resumes from its stored hashes', () => {
    const a = new CompactRange();
    for (const l of leaves.slice(0, 13)) a.append(l);
    const b = new CompactRange({ size: a.size, hashes: a.hashes });
    for (const l of leaves.slice(13)) b.append(l);
    expect(bytesToHex(b.root())).toBe(bytesToHex(referenceRoot(leaves)));
    expect(() => new CompactRange({ size: 13, hashes: a.hashes.slice(1) })).toThrow(RangeError);
  });

  it('checks its arguments', () => {
    expect(() => inclusionPlan({ index: 3, size: 3 })).toThrow(RangeError);
    expect(() => consistencyPlan({ from: 4, to: 3 })).toThrow(RangeError);
    expect(() => rootFromInclusionProof({ index: 3, size: 3, leafHash: leaves[0]!, proof: [] })).toThrow(/not below/);
  });
});
