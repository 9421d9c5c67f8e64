// The sync server's database schema (drizzle, SQLite/libsql): every table, its indexes and constraints.
//
// Tenancy: every tenant row carries `org_id`, and every repository query filters on it. Bytes that are
// public material (keys, fingerprints, signatures) live in blob columns; large or secret-free payloads
// (packages, aggregates, release payloads) live in the content-addressed blob store, referenced by
// SHA-256 hex. Times are integer milliseconds since the epoch. Migrations are generated from this file
// with `npm run db:generate` into server/db/migrations/ and applied at start (server/db/client.ts).
import { blob, foreignKey, index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

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
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt), index('sessions_org_idx').on(t.orgId)],
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
  (t) => [index('enrollment_tokens_fleet_idx').on(t.orgId, t.fleetId), index('enrollment_tokens_fleet_fk_idx').on(t.fleetId)],
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
  (t) => [index('robots_fleet_idx').on(t.orgId, t.fleetId), uniqueIndex('robots_enrollment_unique').on(t.enrollmentId), index('robots_fleet_fk_idx').on(t.fleetId)],
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
  (t) => [
    uniqueIndex('rounds_org_round_unique').on(t.orgId, t.roundId),
    index('rounds_fleet_state_idx').on(t.orgId, t.fleetId, t.state),
    index('rounds_fleet_fk_idx').on(t.fleetId),
    // The round-to-key mapping (GET /he-keys) and the key_revoked checks filter on it.
    index('rounds_org_key_version_idx').on(t.orgId, t.keyVersion),
  ],
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
    index('contributions_robot_fk_idx').on(t.robotId),
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
  (t) => [uniqueIndex('dp_ledger_round_robot_unique').on(t.roundPk, t.robotId), index('dp_ledger_fleet_idx').on(t.orgId, t.fleetId), index('dp_ledger_robot_fk_idx').on(t.robotId)],
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
    index('releases_round_fk_idx').on(t.roundPk),
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
    /**
     * Position of the leaf in its organization's Merkle tree (0-based, dense). Nullable only so the
     * column could be added to a populated table; a migration backfills it and every append sets it.
     */
    leafIndex: integer('leaf_index'),
  },
  (t) => [index('audit_log_org_seq_idx').on(t.orgId, t.seq), uniqueIndex('audit_log_org_leaf_unique').on(t.orgId, t.leafIndex)],
);


/**
 * Idempotency keys of robot uploads (POST /rounds/:id/contributions, header `Idempotency-Key`), scoped
 * to the robot: a retried push whose first answer was lost gets that answer again instead of a 409.
 * Written in the same transaction as the contribution it answers, so a key exists only for a commit.
 */
export const idempotencyKeys = sqliteTable(
  'idempotency_keys',
  {
    robotId: text('robot_id')
      .notNull()
      .references(() => robots.id),
    key: text('key').notNull(),
    /** SHA-256 hex of the request body: the same key with another body is refused (422). */
    requestSha256: text('request_sha256').notNull(),
    roundPk: text('round_pk')
      .notNull()
      .references(() => rounds.id),
    contributionId: text('contribution_id')
      .notNull()
      .references(() => contributions.id),
    /** The JSON body of the original 201. */
    response: text('response').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.robotId, t.key] }), index('idempotency_keys_round_idx').on(t.roundPk), index('idempotency_keys_contribution_fk_idx').on(t.contributionId)],
);

/**
 * How a finalized round was decided: once, by a release (kind `release`) or by an officer-signed
 * rejection (kind `rejection`, core/records/round-rejection.ts). The unique round makes a second
 * decision — e.g. an approval signed offline after someone else rejected — a 409 `round_decided`.
 */
export const roundDecisions = sqliteTable(
  'round_decisions',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    roundPk: text('round_pk')
      .notNull()
      .references(() => rounds.id),
    roundId: text('round_id').notNull(),
    /** release | rejection. */
    kind: text('kind').notNull(),
    /** The release that decided the round (kind release). */
    releaseId: text('release_id'),
    /** The signed rejection record as posted (kind rejection). */
    record: bytes('record'),
    fingerprint: bytes('fingerprint'),
    reason: text('reason'),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('round_decisions_round_unique').on(t.roundPk), index('round_decisions_org_idx').on(t.orgId)],
);

/**
 * Idempotency keys of officer decisions (POST /releases, POST /rounds/:id/rejection, header
 * `Idempotency-Key`), scoped to the organization: the PWA's outbox resends a decision signed offline
 * until it gets an answer, and a resend of one that was stored gets the original 201 again, never a
 * second release. Written in the same transaction as the decision, so a key exists only for a commit.
 */
export const decisionIdempotencyKeys = sqliteTable(
  'decision_idempotency_keys',
  {
    orgId: orgId(),
    key: text('key').notNull(),
    /** SHA-256 hex of method, path and body: the same key with another request is refused (422). */
    requestSha256: text('request_sha256').notNull(),
    /** The JSON body of the original 201. */
    response: text('response').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.key] })],
);

/** Per robot and release: when the robot fetched it (delivered) and what it reported after applying. */
export const releaseDeliveries = sqliteTable(
  'release_deliveries',
  {
    orgId: orgId(),
    releaseId: text('release_id').notNull(),
    robotId: text('robot_id')
      .notNull()
      .references(() => robots.id),
    deliveredAt: integer('delivered_at').notNull(),
    /** applied | failed, as the robot reported (POST /releases/:id/report); null until it does. */
    status: text('status'),
    detail: text('detail'),
    reportedAt: integer('reported_at'),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.releaseId, t.robotId] }), index('release_deliveries_robot_fk_idx').on(t.robotId)],
);

// ---- Issue 4: the Merkle audit log and the HE key lifecycle ----------------------------------------

/**
 * Every complete subtree of each organization's audit Merkle tree (RFC 6962 hashing): node (level,
 * index) is the root of leaves [index * 2^level, (index + 1) * 2^level); level 0 are the leaf hashes.
 * About 2n rows for n leaves; tree heads and proofs read O(log^2 n) of them (server/db/audit.ts).
 * Append-only like audit_log (triggers in a migration).
 */
export const auditTreeNodes = sqliteTable(
  'audit_tree_nodes',
  {
    orgId: orgId(),
    level: integer('level').notNull(),
    nodeIndex: integer('node_index').notNull(),
    hash: bytes('hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.level, t.nodeIndex] })],
);

/** Officer-signed HE key revocations (core/records/revocation.ts), at most one per key version. */
export const heKeyRevocations = sqliteTable(
  'he_key_revocations',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    keyVersion: integer('key_version').notNull(),
    /** The signed revocation record, as posted. */
    record: bytes('record').notNull(),
    fingerprint: bytes('fingerprint').notNull(),
    reason: text('reason').notNull(),
    revokedAt: integer('revoked_at').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('he_key_revocations_org_version_unique').on(t.orgId, t.keyVersion),
    foreignKey({ columns: [t.orgId, t.keyVersion], foreignColumns: [heKeys.orgId, heKeys.keyVersion], name: 'he_key_revocations_key_fk' }),
  ],
);

/** Command-safety cells (core/safety/cell.ts), configured per fleet; `version` grows with every PUT. */
export const safetyCells = sqliteTable(
  'safety_cells',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    fleetId: text('fleet_id')
      .notNull()
      .references(() => fleets.id),
    /** The cell's name in its fleet (path parameter). */
    cellId: text('cell_id').notNull(),
    version: integer('version').notNull(),
    /** The validated cell document (tensorguard-safety-cell/v1), JSON. */
    config: text('config', { mode: 'json' }).notNull(),
    updatedBy: text('updated_by').notNull(),
    createdAt: createdAt(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('safety_cells_fleet_cell_unique').on(t.orgId, t.fleetId, t.cellId), index('safety_cells_fleet_fk_idx').on(t.fleetId)],
);

/** Each robot's last persisted heartbeat (e-stop state); written on state changes and at most every few seconds. */
export const robotHeartbeats = sqliteTable(
  'robot_heartbeats',
  {
    robotId: text('robot_id')
      .primaryKey()
      .references(() => robots.id),
    orgId: orgId(),
    fleetId: text('fleet_id').notNull(),
    /** armed | engaged | fault | unavailable */
    estop: text('estop').notNull(),
    /** The robot's own clock at sending, ms (informational). */
    robotTime: integer('robot_time'),
    receivedAt: integer('received_at').notNull(),
  },
  (t) => [index('robot_heartbeats_fleet_idx').on(t.orgId, t.fleetId)],
);

/**
 * Per-session activity for the idle timeout and re-authentication (ASVS 7.3.1, 7.5.x): when the
 * session was last used (written at most once a minute) and when its user last proved the password.
 */
export const sessionActivity = sqliteTable('session_activity', {
  sessionId: text('session_id')
    .primaryKey()
    .references(() => sessions.id, { onDelete: 'cascade' }),
  lastUsedAt: integer('last_used_at').notNull(),
  reauthAt: integer('reauth_at').notNull(),
});

/**
 * Fixed-window rate-limit counters shared by every server instance on the database (ASVS 6.1.1,
 * 6.3.1): one row per key (`signin:user:<name>`, `user:<id>`, `robot:<id>`, ...), its current window's
 * start and count; an upsert resets the count when the window moved on (server/db/rate-limits.ts).
 */
export const rateLimitCounters = sqliteTable(
  'rate_limit_counters',
  {
    key: text('key').primaryKey(),
    windowStart: integer('window_start').notNull(),
    count: integer('count').notNull(),
  },
  (t) => [index('rate_limit_counters_window_idx').on(t.windowStart)],
);

/**
 * Leases shared by every server instance on the database (server/db/leases.ts): one row per named
 * piece of work (`round-finalize:<round pk>`), who holds it and until when. Taken and renewed by a
 * compare-and-set upsert that succeeds only when the row is free, expired or already the caller's.
 */
export const leases = sqliteTable('leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  expiresAt: integer('expires_at').notNull(),
});

// --- Model registry and staged rollout (core/registry/) -------------------------------------------------

/** Base models of the registry: the fingerprint rounds name (baseAdapterSha256, hex), task types, version. */
export const registryBaseModels = sqliteTable(
  'registry_base_models',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    /** SHA-256 adapter fingerprint (core/peft/adapter.ts), hex; what a round config's baseAdapterSha256 names. */
    fingerprint: text('fingerprint').notNull(),
    name: text('name').notNull(),
    /** JSON array of task type names (e.g. ["reach", "place"]). */
    taskTypes: text('task_types', { mode: 'json' }).notNull(),
    version: text('version').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('registry_base_models_org_fp_unique').on(t.orgId, t.fingerprint)],
);

/** Promotions and rollbacks: which release a staged follow-up release came from. */
export const releaseRollouts = sqliteTable(
  'release_rollouts',
  {
    /** The follow-up release (promotion or rollback). */
    releaseId: text('release_id').primaryKey(),
    orgId: orgId(),
    fleetId: text('fleet_id').notNull(),
    /** promotion | rollback */
    kind: text('kind').notNull(),
    /** The release promoted, or the release that was live when the rollback was signed. */
    fromReleaseId: text('from_release_id').notNull(),
    /** For a rollback: the version whose adapter it restores. */
    restoresVersion: integer('restores_version'),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('release_rollouts_from_idx').on(t.orgId, t.fromReleaseId)],
);

/** Canary telemetry: each report is one window of runs on a release (robot-signed). */
export const canaryTelemetry = sqliteTable(
  'canary_telemetry',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    releaseId: text('release_id').notNull(),
    robotId: text('robot_id')
      .notNull()
      .references(() => robots.id),
    runs: integer('runs').notNull(),
    errors: integer('errors').notNull(),
    latencyP99Ms: real('latency_p99_ms').notNull(),
    safetyEvents: integer('safety_events').notNull(),
    reportedAt: integer('reported_at').notNull(),
  },
  (t) => [index('canary_telemetry_release_idx').on(t.orgId, t.releaseId, t.reportedAt), index('canary_telemetry_robot_fk_idx').on(t.robotId)],
);

/** Per-fleet rollback thresholds (defaults in core/registry/canary.ts when a fleet has none). */
export const rolloutPolicies = sqliteTable(
  'rollout_policies',
  {
    fleetId: text('fleet_id')
      .primaryKey()
      .references(() => fleets.id),
    orgId: orgId(),
    maxErrorRate: real('max_error_rate').notNull(),
    maxP99Ms: real('max_p99_ms').notNull(),
    maxSafetyEvents: integer('max_safety_events').notNull(),
    updatedBy: text('updated_by').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('rollout_policies_org_idx').on(t.orgId)],
);

// --- Round latency breakdown (server/routes/timings.ts) -------------------------------------------------

/**
 * Stage timings of a round, as measured by whoever did the work: robots report train, compress,
 * encrypt, upload (and apply, once a release of the round is applied); the officer reports decrypt and
 * review; the server records aggregate itself. One row per (round, actor, stage): a repeated report of the
 * same stage by the same actor replaces nothing (first write wins; the route answers 409).
 */
export const roundStageTimings = sqliteTable(
  'round_stage_timings',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    roundId: text('round_id')
      .notNull()
      .references(() => rounds.id),
    /** robot | officer | server */
    actorKind: text('actor_kind').notNull(),
    /** The robot id, the user id, or the server instance id. */
    actorId: text('actor_id').notNull(),
    /** train | compress | encrypt | upload | aggregate | decrypt | review | apply */
    stage: text('stage').notNull(),
    durationMs: real('duration_ms').notNull(),
    recordedAt: integer('recorded_at').notNull(),
  },
  (t) => [
    uniqueIndex('round_stage_timings_unique').on(t.roundId, t.actorKind, t.actorId, t.stage),
    index('round_stage_timings_org_round_idx').on(t.orgId, t.roundId),
  ],
);

// --- Customer evaluation models (server/routes/evaluation-models.ts) ------------------------------------

/**
 * A customer's evaluation model for a fleet: the officer-signed record (core/records/eval-model.ts) that
 * names the ONNX model's SHA-256 and the SHA-256 of the scenario set's ciphertext (AES-256-GCM, content
 * key wrapped with ML-KEM-768 to officer keys). Both blobs live in the blob store; the server never holds
 * the scenario set's plaintext or key. The fleet's active model is its newest row that is not retired.
 */
export const evaluationModels = sqliteTable(
  'evaluation_models',
  {
    id: text('id').primaryKey(),
    orgId: orgId(),
    /** The record's modelId (chosen by the officer; unique per organization, the API's id). */
    modelId: text('model_id').notNull(),
    fleetId: text('fleet_id')
      .notNull()
      .references(() => fleets.id),
    name: text('name').notNull(),
    /** The signed record bytes, as the officer posted them. */
    record: bytes('record').notNull(),
    /** The record's domain-separated fingerprint, hex. */
    fingerprint: text('fingerprint').notNull(),
    /** SHA-256 of the officer's ML-DSA-65 public key that signed the record, hex. */
    signerKeySha256: text('signer_key_sha256').notNull(),
    modelSha256: text('model_sha256').notNull(),
    modelBytes: integer('model_bytes').notNull(),
    scenariosSha256: text('scenarios_sha256').notNull(),
    scenariosBytes: integer('scenarios_bytes').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    retiredBy: text('retired_by'),
    retiredAt: integer('retired_at'),
    retireReason: text('retire_reason'),
  },
  (t) => [
    uniqueIndex('evaluation_models_fingerprint_unique').on(t.orgId, t.fingerprint),
    uniqueIndex('evaluation_models_model_unique').on(t.orgId, t.modelId),
    index('evaluation_models_fleet_idx').on(t.orgId, t.fleetId, t.createdAt),
    index('evaluation_models_fleet_fk_idx').on(t.fleetId),
  ],
);
