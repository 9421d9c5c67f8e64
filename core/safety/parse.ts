// Field-level validation for safety cells and command requests: every failure is a
// SafetyRequestError (400 `malformed`) whose message and details name the offending field, e.g.
// `"trajectory.waypoints[3].t" expected a time after waypoint 2 (0.4 s), got 0.35`.
import { TensorGuardError, describe } from '../errors.ts';
import type { Vec3 } from './geometry.ts';

export class SafetyRequestError extends TensorGuardError {
  readonly field: string;
  constructor(field: string, message: string) {
    super({ message: `"${field}" ${message}`, code: 'malformed', status: 400, details: { field } });
    this.field = field;
  }
}

export const fail = (field: string, message: string): never => {
  throw new SafetyRequestError(field, message);
};

export function obj(field: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, `expected object, got ${describe(v)}`);
  for (const k of Object.keys(v as object)) if (!allowed.includes(k)) fail(field ? `${field}.${k}` : k, `is not a known field (known: ${allowed.join(', ')})`);
  return v as Record<string, unknown>;
}

export function num(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(field, `expected finite number, got ${describe(v)}`);
  if ((v as number) < min || (v as number) > max) fail(field, `expected number in [${min}, ${max}], got ${v}`);
  return v as number;
}

export function optNum(field: string, v: unknown, min: number, max: number, fallback: number): number {
  return v === undefined ? fallback : num(field, v, min, max);
}

export function int(field: string, v: unknown, min: number, max: number): number {
  const n = num(field, v, min, max);
  if (!Number.isSafeInteger(n)) fail(field, `expected integer, got ${n}`);
  return n;
}

export function str(field: string, v: unknown, maxLength: number, pattern?: RegExp): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) fail(field, `expected string of 1..${maxLength} characters, got ${describe(v)}`);
  if (pattern && !pattern.test(v as string)) fail(field, `expected ${pattern.source}, got ${describe(v)}`);
  return v as string;
}

export function arr(field: string, v: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) fail(field, `expected array, got ${describe(v)}`);
  const a = v as unknown[];
  if (a.length < min || a.length > max) fail(field, `expected ${min}..${max} items, got ${a.length}`);
  return a;
}

/** A point or vector in metres; |component| <= bound. */
export function vec3(field: string, v: unknown, bound = 1000): Vec3 {
  const a = arr(field, v, 3, 3);
  return [num(`${field}[0]`, a[0], -bound, bound), num(`${field}[1]`, a[1], -bound, bound), num(`${field}[2]`, a[2], -bound, bound)];
}

export function oneOf<T extends string>(field: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !options.includes(v as T)) fail(field, `expected one of ${options.join(', ')}, got ${describe(v)}`);
  return v as T;
}
