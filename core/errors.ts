// Typed errors shared by every part of TensorGuard: argument checks and named domain failures.
// Each domain error carries a stable `code` and the HTTP `status` the server answers with
// (the server translates in one place, server/http/errors.ts).

export class TensorGuardError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  constructor(options: { message: string; code: string; status: number; details?: Record<string, unknown>; cause?: unknown }) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.status = options.status;
    this.details = options.details;
  }
}

function domainError(name: string, code: string, status: number) {
  const cls = class extends TensorGuardError {
    constructor(message: string, details?: Record<string, unknown>, cause?: unknown) {
      super({ message, code, status, details, cause });
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

/** Bytes or JSON that do not parse as the format they claim (truncated, trailing bytes, bad field). */
export const FormatError = domainError('FormatError', 'malformed', 400);
/** A record with a version this build does not know. */
export const UnsupportedVersionError = domainError('UnsupportedVersionError', 'unsupported_version', 400);
/** A field or body larger than its bound. */
export const OversizeError = domainError('OversizeError', 'oversize', 413);
/** A signature that does not verify, or a signer that is not the one required. */
export const SignatureInvalidError = domainError('SignatureInvalidError', 'bad_signature', 401);
/** A key record, release or bundle signed by a key the verifier has not pinned. */
export const UntrustedSignerError = domainError('UntrustedSignerError', 'untrusted_signer', 401);
/** Authentication missing or wrong. */
export const AuthenticationError = domainError('AuthenticationError', 'unauthenticated', 401);
/** A request seen before (nonce reuse or stale timestamp). */
export const ReplayError = domainError('ReplayError', 'replay', 401);
/** Authenticated but not allowed (role, fleet, tenant). */
export const ForbiddenError = domainError('ForbiddenError', 'forbidden', 403);
/** A differential-privacy budget that would be exceeded. Hard stop. */
export const BudgetExhaustedError = domainError('BudgetExhaustedError', 'dp_budget_exhausted', 403);
/** A value outside the fleet's operating envelope. */
export const EnvelopeViolationError = domainError('EnvelopeViolationError', 'envelope_violation', 422);
/** The thing asked for does not exist (or belongs to another tenant). */
export const NotFoundError = domainError('NotFoundError', 'not_found', 404);
/** A state conflict: duplicate contribution, round not open, already bootstrapped. */
export const ConflictError = domainError('ConflictError', 'conflict', 409);
/** Cryptographic material that does not match what was expected (wrong key version, parms id, hash). */
export const IntegrityError = domainError('IntegrityError', 'integrity', 400);
/** The officer refuses to decrypt: the manifest does not prove the quorum. */
export const QuorumNotMetError = domainError('QuorumNotMetError', 'quorum_not_met', 409);
/** A ciphertext-level problem: coefficient out of range, parameter mismatch. */
export const CiphertextError = domainError('CiphertextError', 'bad_ciphertext', 400);
/** Wrong passphrase or corrupted sealed secret. */
export const DecryptionError = domainError('DecryptionError', 'decryption_failed', 400);

/** `"<name>" expected X, got Y` — the uniform argument error text (noble style). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === 'string') return value.length > 40 ? `string(${value.length})` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return typeof value;
}

export function expectBytes(name: string, value: unknown, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`"${name}" expected Uint8Array, got ${describe(value)}`);
  if (length !== undefined && value.length !== length)
    throw new RangeError(`"${name}" expected Uint8Array(${length}), got Uint8Array(${value.length})`);
  return value;
}

export function expectInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new TypeError(`"${name}" expected integer, got ${describe(value)}`);
  if (value < min || value > max) throw new RangeError(`"${name}" expected integer in [${min}, ${max}], got ${value}`);
  return value;
}

export function expectFinite(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new TypeError(`"${name}" expected finite number, got ${describe(value)}`);
  if (value < min || value > max) throw new RangeError(`"${name}" expected number in [${min}, ${max}], got ${value}`);
  return value;
}
