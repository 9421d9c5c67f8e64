// Operating envelope: defaults, validation messages, round and update checks.
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENVELOPE, checkRoundAgainstEnvelope, checkUpdateAgainstEnvelope, envelopeSchema, resolveEnvelope, validateEnvelope } from './envelope.ts';
import { EnvelopeViolationError, OversizeError } from './errors.ts';

const now = 1_700_000_000_000;

describe('envelope', () => {
  it('has the original defaults and they validate', () => {
    expect(DEFAULT_ENVELOPE).toEqual({
      maxTrainableParams: 10_000_000,
      updateBytes: { min: 10_000, target: 500_000, max: 5_000_000 },
      roundIntervalMs: { min: 600_000, max: 86_400_000, default: 3_600_000 },
      serverOperations: ['sum', 'average'],
      canaryFraction: 0.1,
    });
    expect(validateEnvelope({ envelope: DEFAULT_ENVELOPE })).toEqual(DEFAULT_ENVELOPE);
    expect(envelopeSchema.parse(DEFAULT_ENVELOPE)).toEqual(DEFAULT_ENVELOPE);
  });

  it('names the bad field', () => {
    expect(() => validateEnvelope({ envelope: { ...DEFAULT_ENVELOPE, updateBytes: { min: 10, target: 5, max: 100 } } })).toThrow(/updateBytes\.target/);
    expect(() => validateEnvelope({ envelope: { ...DEFAULT_ENVELOPE, serverOperations: ['sum', 'inspect'] } })).toThrow(/serverOperations/);
    expect(() => validateEnvelope({ envelope: { ...DEFAULT_ENVELOPE, canaryFraction: 0 } })).toThrow(RangeError);
    expect(() => resolveEnvelope({ override: { updateBytes: { max: 5 } } })).toThrow(/updateBytes\.max/);
  });

  it('merges overrides over the defaults', () => {
    const e = resolveEnvelope({ override: { updateBytes: { max: 1_000_000 }, canaryFraction: 0.25 } });
    expect(e.updateBytes).toEqual({ min: 10_000, target: 500_000, max: 1_000_000 });
    expect(e.canaryFraction).toBe(0.25);
  });

  it('checks updates: too big is 413 oversize, too small is 422', () => {
    expect(() => checkUpdateAgainstEnvelope({ envelope: DEFAULT_ENVELOPE, updateBytes: 5_000_001 })).toThrow(OversizeError);
    expect(() => checkUpdateAgainstEnvelope({ envelope: DEFAULT_ENVELOPE, updateBytes: 9_999 })).toThrow(EnvelopeViolationError);
    try {
      checkUpdateAgainstEnvelope({ envelope: DEFAULT_ENVELOPE, updateBytes: 5_000_001 });
    } catch (e) {
      expect((e as Error).message).toContain('5000000');
      expect((e as Error).message).toContain('5000001');
    }
    expect(() => checkUpdateAgainstEnvelope({ envelope: DEFAULT_ENVELOPE, updateBytes: 65_649 })).not.toThrow();
  });

  it('checks rounds: parameters, update size, interval', () => {
    const base = { envelope: DEFAULT_ENVELOPE, valueCount: 1000, updateBytes: 65_649, deadline: 0, openedAt: now };
    expect(() => checkRoundAgainstEnvelope(base)).not.toThrow();
    expect(() => checkRoundAgainstEnvelope({ ...base, valueCount: 10_000_001 })).toThrow(/maxTrainableParams/);
    expect(() => checkRoundAgainstEnvelope({ ...base, deadline: now + 60_000 })).toThrow(/roundIntervalMs\.min/);
    expect(() => checkRoundAgainstEnvelope({ ...base, deadline: now + 2 * 86_400_000 })).toThrow(/roundIntervalMs\.max/);
    expect(() => checkRoundAgainstEnvelope({ ...base, deadline: now + 3_600_000 })).not.toThrow();
  });
});
