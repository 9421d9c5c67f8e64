// The sync server's database schema (drizzle, SQLite/libsql): every table, its indexes and constraints.
//
// Tenancy: every tenant row carries `org_id`, and every repository query filters on it. Bytes that are
// public material (keys, fingerprints, signatures) live in blob columns; large or secret-free payloads
// (packages, aggregates, release payloads) live in the content-addressed blob store, referenced by
// SHA-256 hex. Times are integer milliseconds since the epoch. Migrations are generated from this file
// with `npm run db:generate` into server/db/migrations/ and applied at start (server/db/client.ts).
import { blob, index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

const bytes = (name: string) => blob(name, { mode: 'buffer' });
const createdAt = () => integer('created_at').notNull();
const orgId = () =>
  text('org_id')
    .notNull()
    .references(() => organizations.id);

export const organizations = sqliteTable('organizations', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: createdAt(),
});

export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    name: text('name').notNull(),
    passwordHash: text('password_hash').notNull(),
    /** JSON array of roles: admin | officer | operator | auditor. */
    roles: text('roles', { mode: 'json' }).$type<string[]>().notNull(),
    createdAt: createdAt(),
    disabledAt: integer('disabled_at'),
  },
  (t) => [uniqueIndex('users_name_unique').on(t.name), index('users_org_idx').on(t.orgId)],
);

export const sessions = sqliteTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    /** SHA-256 of the token's secret half; the secret itself is never stored. */
    secretHash: bytes('secret_hash').notNull(),
    createdAt: createdAt(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt)],
);

export const fleets = sqliteTable(
  'fleets',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    name: text('name').notNull(),
    /** The resolved operating envelope (core/envelope.ts), JSON. */
    envelope: text('envelope', { mode: 'json' }).notNull(),
    /** Optional epsilon cap over all DP rounds of the fleet (composed with the RDP accountant). */
    dpEpsilonBudget: real('dp_epsilon_budget'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('fleets_org_name_unique').on(t.orgId, t.name)],
);

export const officerKeys = sqliteTable(
  'officer_keys',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    /** ML-DSA-65 public key (1952 bytes). */
    publicKey: bytes('public_key').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('officer_keys_org_key_unique').on(t.orgId, t.publicKey)],
);

export const enrollmentTokens = sqliteTable(
  'enrollment_tokens',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    fleetId: text('fleet_id')
      .notNull()
      .references(() => fleets.id),
    secretHash: bytes('secret_hash').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    expiresAt: integer('expires_at').notNull(),
    usedAt: integer('used_at'),
  },
  (t) => [index('enrollment_tokens_fleet_idx').on(t.orgId, t.fleetId)],
);

export const robots = sqliteTable(
  'robots',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    fleetId: text('fleet_id')
      .notNull()
      .references(() => fleets.id),
    name: text('name').notNull(),
    /** The enrollment token (= officer bundle id) the robot enrolled with; keys its attestation. */
    enrollmentId: text('enrollment_id').notNull(),
    dsaPublicKey: bytes('dsa_public_key').notNull(),
    kemPublicKey: bytes('kem_public_key').notNull(),
    attestation: bytes('attestation').notNull(),
    enrolledAt: integer('enrolled_at').notNull(),
    revokedAt: integer('revoked_at'),
  },
  (t) => [index('robots_fleet_idx').on(t.orgId, t.fleetId), uniqueIndex('robots_enrollment_unique').on(t.enrollmentId)],
);

/** Request nonces seen per robot, kept until the timestamp window has passed. */
export const robotNonces = sqliteTable(
  'robot_nonces',
  {
    robotId: text('robot_id')
      .notNull()
      .references(() => robots.id),
    nonce: text('nonce').notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.robotId, t.nonce] }), index('robot_nonces_expires_idx').on(t.expiresAt)],
);

export const heKeys = sqliteTable(
  'he_keys',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    keyVersion: integer('key_version').notNull(),
    /** The officer-signed key record, as posted. */
    record: bytes('record').notNull(),
    fingerprint: bytes('fingerprint').notNull(),
    paramSetId: text('param_set_id').notNull(),
    parmsId: bytes('parms_id').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('he_keys_org_version_unique').on(t.orgId, t.keyVersion)],
);

export const rounds = sqliteTable(
  'rounds',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    /** The officer-chosen round id from the signed config; unique per organization. */
    roundId: text('round_id').notNull(),
    fleetId: text('fleet_id')
      .notNull()
      .references(() => fleets.id),
    /** open | closed (deadline passed below quorum) | finalized. */
    state: text('state').notNull(),
    config: bytes('config').notNull(),
    configFingerprint: bytes('config_fingerprint').notNull(),
    keyVersion: integer('key_version').notNull(),
    quorum: integer('quorum').notNull(),
    maxContributors: integer('max_contributors').notNull(),
    deadline: integer('deadline').notNull(),
    valueCount: integer('value_count').notNull(),
    ciphertextCount: integer('ciphertext_count').notNull(),
    /** RoundPrivacyParams (core/dp/round-privacy.ts) of the round, JSON; mode 'off' for no DP. */
    privacy: text('privacy', { mode: 'json' }).notNull(),
    contributionCount: integer('contribution_count').notNull().default(0),
    /** SHA-256 hex of the running aggregate ciphertext in the blob store. */
    aggregateSha256: text('aggregate_sha256'),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    finalizedAt: integer('finalized_at'),
  },
  (t) => [uniqueIndex('rounds_org_round_unique').on(t.orgId, t.roundId), index('rounds_fleet_state_idx').on(t.orgId, t.fleetId, t.state)],
);

export const contributions = sqliteTable(
  'contributions',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    roundPk: text('round_pk')
      .notNull()
      .references(() => rounds.id),
    robotId: text('robot_id')
      .notNull()
      .references(() => robots.id),
    /** Order of acceptance within the round (1-based), the order of manifest entries. */
    seq: integer('seq').notNull(),
    packageSha256: text('package_sha256').notNull(),
    packageBytes: integer('package_bytes').notNull(),
    packageFingerprint: bytes('package_fingerprint').notNull(),
    packageSignature: bytes('package_signature').notNull(),
    ciphertextSha256: bytes('ciphertext_sha256').notNull(),
    /** Aggregate blob after folding this contribution in. */
    aggregateSha256: text('aggregate_sha256').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('contributions_round_robot_unique').on(t.roundPk, t.robotId),
    uniqueIndex('contributions_round_seq_unique').on(t.roundPk, t.seq),
    index('contributions_robot_idx').on(t.orgId, t.robotId),
  ],
);

export const dpLedger = sqliteTable(
  'dp_ledger',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    fleetId: text('fleet_id').notNull(),
    robotId: text('robot_id')
      .notNull()
      .references(() => robots.id),
    roundPk: text('round_pk')
      .notNull()
      .references(() => rounds.id),
    /** The robot's epsilon after this round, composing every round it contributed to (RDP). */
    epsilonAfter: real('epsilon_after').notNull(),
    delta: real('delta').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('dp_ledger_round_robot_unique').on(t.roundPk, t.robotId), index('dp_ledger_fleet_idx').on(t.orgId, t.fleetId)],
);

export const releases = sqliteTable(
  'releases',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    /** The officer-chosen release id from the signed manifest; unique per organization. */
    releaseId: text('release_id').notNull(),
    fleetId: text('fleet_id')
      .notNull()
      .references(() => fleets.id),
    roundPk: text('round_pk')
      .notNull()
      .references(() => rounds.id),
    releaseVersion: integer('release_version').notNull(),
    kind: text('kind').notNull(),
    manifest: bytes('manifest').notNull(),
    fingerprint: bytes('fingerprint').notNull(),
    /** SHA-256 hex of the encrypted payload in the blob store. */
    payloadSha256: text('payload_sha256').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('releases_fleet_version_unique').on(t.fleetId, t.releaseVersion),
    uniqueIndex('releases_org_release_unique').on(t.orgId, t.releaseId),
  ],
);

/** Append-only: a migration adds triggers that refuse UPDATE and DELETE on this table. */
export const auditLog = sqliteTable(
  'audit_log',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    orgId: orgId(),
    actorType: text('actor_type').notNull(),
    actorId: text('actor_id').notNull(),
    action: text('action').notNull(),
    target: text('target').notNull(),
    details: text('details').notNull(),
    /** RFC 6962 leaf hash, hex: SHA-256(0x00 || canonical JSON of the entry). */
    leafHash: text('leaf_hash').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('audit_log_org_seq_idx').on(t.orgId, t.seq)],
);

