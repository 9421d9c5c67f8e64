// The operating envelope of a fleet: the bounds every round and every update must stay inside. Pure.
//
// An envelope is data the admin sets per fleet (defaults below). The server checks a round against it
// when the officer opens the round, and each update package against it when a robot pushes one; the
// robot CLI can run the same checks before it trains. `serverOperations` lists what the sync server may
// do with ciphertexts: only homomorphic `sum` and `average` — never plaintext inspection.
import { z } from 'zod';
import { EnvelopeViolationError, OversizeError, describe } from './errors.ts';

export const SERVER_OPERATIONS = ['sum', 'average'] as const;
export type ServerOperation = (typeof SERVER_OPERATIONS)[number];

export interface Envelope {
  /** Most trainable (adapter) parameters a round may carry: its `valueCount`. */
  maxTrainableParams: number;
  /** Bytes of one robot's encrypted update (the package's ciphertext bytes). */
  updateBytes: { min: number; target: number; max: number };
  /** Time from opening a round to its deadline, in milliseconds. */
  roundIntervalMs: { min: number; max: number; default: number };
  /** What the server may compute over ciphertexts. */
  serverOperations: ServerOperation[];
  /** Share of the fleet that receives a release first. */
  canaryFraction: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The original defaults: 10 M parameters, 10 KB / 500 KB / 5 MB updates, rounds 10 min .. 1 day (1 h). */
export const DEFAULT_ENVELOPE: Readonly<Envelope> = Object.freeze({
  maxTrainableParams: 10_000_000,
  updateBytes: Object.freeze({ min: 10_000, target: 500_000, max: 5_000_000 }),
  roundIntervalMs: Object.freeze({ min: 10 * MINUTE, max: DAY, default: HOUR }),
  serverOperations: Object.freeze(['sum', 'average']) as unknown as ServerOperation[],
  canaryFraction: 0.1,
}) as Envelope;

/** Hard ceilings no envelope may exceed (a fleet can tighten, not lift, what the server can carry). */
export const ENVELOPE_CEILINGS = Object.freeze({
  maxTrainableParams: 1_000_000_000,
  updateBytes: 1 << 30,
  roundIntervalMs: 365 * DAY,
});

const positiveInt = (max: number) => z.number().int().positive().max(max);

/** Zod schema of a complete envelope (shape and basic ranges; `validateEnvelope` checks the relations). */
export const envelopeSchema = z.strictObject({
  maxTrainableParams: positiveInt(ENVELOPE_CEILINGS.maxTrainableParams),
  updateBytes: z.strictObject({
    min: positiveInt(ENVELOPE_CEILINGS.updateBytes),
    target: positiveInt(ENVELOPE_CEILINGS.updateBytes),
    max: positiveInt(ENVELOPE_CEILINGS.updateBytes),
  }),
  roundIntervalMs: z.strictObject({
    min: positiveInt(ENVELOPE_CEILINGS.roundIntervalMs),
    max: positiveInt(ENVELOPE_CEILINGS.roundIntervalMs),
    default: positiveInt(ENVELOPE_CEILINGS.roundIntervalMs),
  }),
  serverOperations: z.array(z.enum(SERVER_OPERATIONS)).min(1).max(SERVER_OPERATIONS.length),
  canaryFraction: z.number().gt(0).max(1),
});

/** Zod schema of an envelope override: any subset of fields, merged over DEFAULT_ENVELOPE by `resolveEnvelope`. */
export const envelopeOverrideSchema = z.strictObject({
  maxTrainableParams: envelopeSchema.shape.maxTrainableParams.optional(),
  updateBytes: envelopeSchema.shape.updateBytes.partial().optional(),
  roundIntervalMs: envelopeSchema.shape.roundIntervalMs.partial().optional(),
  serverOperations: envelopeSchema.shape.serverOperations.optional(),
  canaryFraction: envelopeSchema.shape.canaryFraction.optional(),
});
export type EnvelopeOverride = z.infer<typeof envelopeOverrideSchema>;

function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new RangeError(`"${name}" expected integer, got ${describe(value)}`);
  if (value < min || value > max) throw new RangeError(`"${name}" expected integer in [${min}, ${max}], got ${value}`);
  return value;
}

/**
 * Checks an envelope on its own and returns a clean copy. Throws RangeError naming the first bad field:
 * sizes positive and ordered (min <= target <= max, min <= default <= max), operations a non-empty
 * subset of {sum, average} without repeats, canary fraction in (0, 1].
 */
export function validateEnvelope(options: { envelope: unknown }): Envelope {
  const e = options.envelope as Partial<Envelope> | null;
  if (typeof e !== 'object' || e === null) throw new RangeError(`"envelope" expected object, got ${describe(e)}`);
  const maxTrainableParams = checkInt('envelope.maxTrainableParams', e.maxTrainableParams, 1, ENVELOPE_CEILINGS.maxTrainableParams);
  const ub = e.updateBytes as Envelope['updateBytes'] | undefined;
  if (typeof ub !== 'object' || ub === null) throw new RangeError(`"envelope.updateBytes" expected object, got ${describe(ub)}`);
  const min = checkInt('envelope.updateBytes.min', ub.min, 1, ENVELOPE_CEILINGS.updateBytes);
  const max = checkInt('envelope.updateBytes.max', ub.max, min, ENVELOPE_CEILINGS.updateBytes);
  const target = checkInt('envelope.updateBytes.target', ub.target, min, max);
  const ri = e.roundIntervalMs as Envelope['roundIntervalMs'] | undefined;
  if (typeof ri !== 'object' || ri === null)
    throw new RangeError(`"envelope.roundIntervalMs" expected object, got ${describe(ri)}`);
  const riMin = checkInt('envelope.roundIntervalMs.min', ri.min, 1, ENVELOPE_CEILINGS.roundIntervalMs);
  const riMax = checkInt('envelope.roundIntervalMs.max', ri.max, riMin, ENVELOPE_CEILINGS.roundIntervalMs);
  const riDefault = checkInt('envelope.roundIntervalMs.default', ri.default, riMin, riMax);
  const ops = e.serverOperations;
  if (!Array.isArray(ops) || ops.length === 0)
    throw new RangeError(`"envelope.serverOperations" expected non-empty array, got ${describe(ops)}`);
  for (const op of ops) {
    if (!(SERVER_OPERATIONS as readonly unknown[]).includes(op))
      throw new RangeError(`"envelope.serverOperations" expected only ${SERVER_OPERATIONS.join('|')}, got ${describe(op)}`);
  }
  if (new Set(ops).size !== ops.length)
    throw new RangeError(`"envelope.serverOperations" expected no repeats, got ${JSON.stringify(ops)}`);
  const canaryFraction = e.canaryFraction;
  if (typeof canaryFraction !== 'number' || !Number.isFinite(canaryFraction) || canaryFraction <= 0 || canaryFraction > 1)
    throw new RangeError(`"envelope.canaryFraction" expected number in (0, 1], got ${describe(canaryFraction)}`);
  return {
    maxTrainableParams,
    updateBytes: { min, target, max },
    roundIntervalMs: { min: riMin, max: riMax, default: riDefault },
    serverOperations: [...ops],
    canaryFraction,
  };
}

/** Merges an override over DEFAULT_ENVELOPE and validates the result. */
export function resolveEnvelope(options: { override?: EnvelopeOverride | null }): Envelope {
  const o = options.override ?? {};
  return validateEnvelope({
    envelope: {
      maxTrainableParams: o.maxTrainableParams ?? DEFAULT_ENVELOPE.maxTrainableParams,
      updateBytes: { ...DEFAULT_ENVELOPE.updateBytes, ...o.updateBytes },
      roundIntervalMs: { ...DEFAULT_ENVELOPE.roundIntervalMs, ...o.roundIntervalMs },
      serverOperations: o.serverOperations ?? [...DEFAULT_ENVELOPE.serverOperations],
      canaryFraction: o.canaryFraction ?? DEFAULT_ENVELOPE.canaryFraction,
    },
  });
}

/** Checks one update's size: above max is OversizeError (413), below min EnvelopeViolationError (422). */
export function checkUpdateAgainstEnvelope(options: { envelope: Envelope; updateBytes: number }): void {
  const { envelope, updateBytes } = options;
  if (!Number.isSafeInteger(updateBytes) || updateBytes < 0)
    throw new RangeError(`"updateBytes" expected non-negative integer, got ${describe(updateBytes)}`);
  if (updateBytes > envelope.updateBytes.max)
    throw new OversizeError(`update of ${updateBytes} bytes exceeds the envelope's updateBytes.max of ${envelope.updateBytes.max}`, {
      limit: 'updateBytes.max',
      limitValue: envelope.updateBytes.max,
      value: updateBytes,
    });
  if (updateBytes < envelope.updateBytes.min)
    throw new EnvelopeViolationError(
      `update of ${updateBytes} bytes is below the envelope's updateBytes.min of ${envelope.updateBytes.min}`,
      { limit: 'updateBytes.min', limitValue: envelope.updateBytes.min, value: updateBytes },
    );
}

/**
 * Checks a round before it opens: its trainable values within maxTrainableParams, the expected update
 * size within the update bounds, and (when it has one; 0 = none) the deadline within the round interval.
 */
export function checkRoundAgainstEnvelope(options: {
  envelope: Envelope;
  valueCount: number;
  updateBytes: number;
  deadline: number;
  openedAt: number;
}): void {
  const { envelope, valueCount, updateBytes, deadline, openedAt } = options;
  if (!Number.isSafeInteger(valueCount) || valueCount < 1)
    throw new RangeError(`"valueCount" expected positive integer, got ${describe(valueCount)}`);
  if (valueCount > envelope.maxTrainableParams)
    throw new EnvelopeViolationError(
      `round of ${valueCount} values exceeds the envelope's maxTrainableParams of ${envelope.maxTrainableParams}`,
      { limit: 'maxTrainableParams', limitValue: envelope.maxTrainableParams, value: valueCount },
    );
  checkUpdateAgainstEnvelope({ envelope, updateBytes });
  if (!Number.isSafeInteger(deadline) || deadline < 0)
    throw new RangeError(`"deadline" expected non-negative integer, got ${describe(deadline)}`);
  if (deadline === 0) return;
  const interval = deadline - openedAt;
  if (interval < envelope.roundIntervalMs.min)
    throw new EnvelopeViolationError(
      `round interval of ${interval} ms is below the envelope's roundIntervalMs.min of ${envelope.roundIntervalMs.min}`,
      { limit: 'roundIntervalMs.min', limitValue: envelope.roundIntervalMs.min, value: interval },
    );
  if (interval > envelope.roundIntervalMs.max)
    throw new EnvelopeViolationError(
      `round interval of ${interval} ms exceeds the envelope's roundIntervalMs.max of ${envelope.roundIntervalMs.max}`,
      { limit: 'roundIntervalMs.max', limitValue: envelope.roundIntervalMs.max, value: interval },
    );
}
