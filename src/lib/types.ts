// JSON shapes of the sync server's API (docs/API.md) as the PWA reads them.
export interface UserJson {
  id: string;
  name: string;
  roles: string[];
}
export interface OrgJson {
  id: string;
  name: string;
}
export interface FleetJson {
  id: string;
  name: string;
  envelope: Record<string, unknown>;
  dpEpsilonBudget: number | null;
  createdAt: number;
}
export interface RobotJson {
  id: string;
  fleetId: string;
  name: string;
  enrollmentId: string;
  dsaPublicKey: string;
  kemPublicKey: string;
  attestation: string;
  enrolledAt: number;
  revokedAt: number | null;
}
export type RoundState = 'open' | 'closed' | 'finalized';
export interface RoundJson {
  roundId: string;
  fleetId: string;
  state: RoundState;
  config: string;
  configFingerprint: string;
  keyVersion: number;
  quorum: number;
  maxContributors: number;
  deadline: number;
  contributions: number;
  aggregateSha256: string | null;
  createdAt: number;
  finalizedAt: number | null;
}
export interface ContributionJson {
  id: string;
  seq: number;
  robotId: string;
  packageSha256: string;
  packageBytes: number;
  packageFingerprint: string;
  ciphertextSha256: string;
  aggregateSha256: string;
  createdAt: number;
}
export interface ReleaseSummaryJson {
  releaseId: string;
  fleetId: string;
  releaseVersion: number;
  kind: string;
  fingerprint: string;
  payloadSha256: string;
  createdAt: number;
}
export interface ReleaseStatusJson extends ReleaseSummaryJson {
  robots: Array<{ robotId: string; name: string; wrapped: boolean; revokedAt: number | null; deliveredAt: number | null; status: string | null; detail: string | null; reportedAt: number | null }>;
}
export interface LedgerJson {
  entries: Array<{ robotId: string; roundId: string; epsilonAfter: number; delta: number; at: number }>;
  totals: Array<{ robotId: string; rounds: number; epsilon: number }>;
}
export interface DecisionJson {
  roundId: string;
  state: 'undecided' | 'released' | 'rejected';
  releaseId?: string | null;
  reason?: string | null;
  decidedBy?: string;
  decidedAt?: number;
}
export interface HeKeyJson {
  version: number;
  record: string;
  fingerprint: string;
  paramSetId: string;
  createdAt: number;
}
export interface OfficerKeyJson {
  id: string;
  publicKey: string;
  createdBy: string;
  createdAt: number;
}
