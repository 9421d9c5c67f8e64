// A customer's scenario set: JSON of simulator scenarios (core/sim/scenario.ts) grouped in named sets
// with the gate's roles (nominal / site variations / out-of-distribution), validated with zod.
//
//   set.json ──parseScenarioSetDocument (zod, bounds)──▶ ScenarioSetDocument
//     ──encodeScenarioSetDocument (canonical JSON, sorted keys)──▶ bytes the officer encrypts
//     (core/records/eval-model.ts) ──▶ … decrypted in the officer's CLI / eval worker ──▶ parse again
//     ──scenarioSetInputs──▶ the ScenarioSetInput[] evaluatePolicy runs (core/eval/evaluate.ts)
//
// Every number the simulator reads is bounded here, so a decrypted set can never make the simulator loop
// forever or divide by zero; the arm must have ACT_DIM joints (the policy's action and observation sizes
// are fixed by the reference task).
import { z } from 'zod';
import { FormatError, OversizeError } from '../errors.ts';
import { utf8ToBytes } from '../bytes.ts';
import { canonicalJson } from '../audit/leaf.ts';
import { BODY_REGIONS } from '../safety/body-regions.ts';
import { ACT_DIM } from '../sim/env.ts';
import type { Scenario } from '../sim/scenario.ts';
import type { ScenarioSetInput } from './evaluate.ts';

export const SCENARIO_SET_FORMAT = 'tensorguard-scenario-set/v1';
/** Largest scenario set document (bytes of JSON). */
export const MAX_SCENARIO_SET_BYTES = 16 * 1024 * 1024;
/** At most this many sets: keeps the gate's failed checks and metrics within the release manifest's bounds. */
export const MAX_SCENARIO_SETS = 48;
export const MAX_SCENARIOS_PER_SET = 10_000;
export const MAX_SCENARIOS_TOTAL = 50_000;

const num = (min: number, max: number) => z.number().finite().min(min).max(max);
const coord = num(-100, 100);
const positive = (max: number) => z.number().finite().positive().max(max);
const joints = z.array(num(-20, 20)).length(ACT_DIM);

const ScenarioSchema = z
  .object({
    id: z.string().min(1).max(128),
    set: z.string().min(1).max(128),
    seed: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
    arm: z
      .object({
        linkLengths: z.array(positive(10)).length(ACT_DIM),
        linkRadius: positive(1),
        jointMin: joints,
        jointMax: joints,
        speedLimit: z.array(positive(100)).length(ACT_DIM),
        movingMassKg: positive(10_000),
      })
      .strict()
      .refine((a) => a.jointMin.every((v, i) => v < a.jointMax[i]!), 'jointMin must be below jointMax for every joint'),
    workspace: z.array(z.object({ nx: num(-1, 1), ny: num(-1, 1), d: coord }).strict()).min(3).max(64),
    obstacles: z.array(z.object({ x: coord, y: coord, radius: positive(10) }).strict()).max(64),
    humanZone: z
      .object({ minX: coord, minY: coord, maxX: coord, maxY: coord })
      .strict()
      .refine((r) => r.minX <= r.maxX && r.minY <= r.maxY, 'humanZone min must not exceed max'),
    human: z.object({ x: coord, y: coord, radius: positive(10), region: z.enum(BODY_REGIONS) }).strict(),
    object: z.object({ x: coord, y: coord, massKg: num(0, 1000) }).strict(),
    goal: z.object({ x: coord, y: coord }).strict(),
    initialJoints: joints,
    dt: positive(1),
    maxSteps: z.number().int().min(1).max(10_000),
    graspTolerance: positive(10),
    placeTolerance: positive(10),
    sensorNoise: num(0, 1),
    latencyMaxSteps: z.number().int().min(0).max(50),
  })
  .strict();

const SetSchema = z
  .object({
    name: z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : -'),
    role: z.enum(['nominal', 'site', 'ood']),
    scenarios: z.array(ScenarioSchema).min(1).max(MAX_SCENARIOS_PER_SET),
  })
  .strict();

const DocumentSchema = z
  .object({
    format: z.literal(SCENARIO_SET_FORMAT),
    name: z.string().min(1).max(128),
    sets: z.array(SetSchema).min(1).max(MAX_SCENARIO_SETS),
  })
  .strict()
  .superRefine((d, ctx) => {
    const names = new Set<string>();
    let total = 0;
    for (const [i, s] of d.sets.entries()) {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sets', i, 'name'], message: `set name ${s.name} is used twice` });
      names.add(s.name);
      total += s.scenarios.length;
    }
    if (total > MAX_SCENARIOS_TOTAL) ctx.addIssue({ code: 'custom', path: ['sets'], message: `${total} scenarios, at most ${MAX_SCENARIOS_TOTAL}` });
  });

export type ScenarioSetDocument = z.infer<typeof DocumentSchema>;

/** Parses and validates a scenario set (JSON text, bytes, or an already parsed value); FormatError names the field. */
export function parseScenarioSetDocument(options: { json: string | Uint8Array | unknown }): ScenarioSetDocument {
  let value = options.json;
  if (value instanceof Uint8Array) {
    if (value.length > MAX_SCENARIO_SET_BYTES) throw new OversizeError(`scenario set: ${value.length} bytes, at most ${MAX_SCENARIO_SET_BYTES}`);
    try {
      value = new TextDecoder('utf-8', { fatal: true }).decode(value);
    } catch {
      throw new FormatError('scenario set: not UTF-8 text');
    }
  }
  if (typeof value === 'string') {
    if (value.length > MAX_SCENARIO_SET_BYTES) throw new OversizeError(`scenario set: ${value.length} characters, at most ${MAX_SCENARIO_SET_BYTES}`);
    try {
      value = JSON.parse(value);
    } catch {
      throw new FormatError('scenario set: not a JSON document');
    }
  }
  const parsed = DocumentSchema.safeParse(value);
  if (!parsed.success)
    throw new FormatError(
      `scenario set: ${parsed.error.issues
        .slice(0, 10)
        .map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`)
        .join('; ')}`,
      { issues: parsed.error.issues.slice(0, 50).map((i) => ({ path: i.path.join('.'), message: i.message })) },
    );
  return parsed.data;
}

/** The canonical bytes of a validated document (sorted keys, no whitespace): what gets encrypted. */
export function encodeScenarioSetDocument(options: { document: ScenarioSetDocument }): Uint8Array {
  const bytes = utf8ToBytes(canonicalJson(options.document));
  if (bytes.length > MAX_SCENARIO_SET_BYTES) throw new OversizeError(`scenario set: ${bytes.length} bytes, at most ${MAX_SCENARIO_SET_BYTES}`);
  return bytes;
}

/** The sets as the evaluation runs them. */
export function scenarioSetInputs(options: { document: ScenarioSetDocument }): ScenarioSetInput[] {
  return options.document.sets.map((s) => ({ name: s.name, role: s.role, scenarios: s.scenarios as Scenario[] }));
}

/** Scenario counts per role (the gate report's `counts`). */
export function scenarioCounts(options: { document: ScenarioSetDocument }): { nominal: number; site: number; ood: number } {
  const counts = { nominal: 0, site: 0, ood: 0 };
  for (const s of options.document.sets) counts[s.role] += s.scenarios.length;
  return counts;
}
