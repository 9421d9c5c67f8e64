// Reading round records on the UI thread for display: the config inside a round's signed envelope
// (signatures are checked in the workers before anything is decrypted or signed), and a fleet's DP
// spending over its rounds computed with the same accountant the server enforces budgets with.
import { ByteReader } from '../../core/codec/binary.ts';
import { fromBase64 } from '../../core/bytes.ts';
import { readSignedEnvelope, RecordType } from '../../core/records/signed.ts';
import { decodeRoundConfig, type RoundConfig } from '../../core/records/round-config.ts';
import { privacySpent } from '../../core/dp/round-privacy.ts';
import { roundPrivacyParams } from '../../core/round/privacy.ts';
import type { RoundJson } from './types.ts';

export function roundConfigOf(round: Pick<RoundJson, 'config'>): RoundConfig {
  const envelope = readSignedEnvelope({ reader: new ByteReader(fromBase64(round.config), 'round config'), type: RecordType.roundConfig, maxBody: 4 * 1024 * 1024 });
  return decodeRoundConfig({ bytes: envelope.body });
}

/**
 * Cumulative epsilon of a fleet after each of its DP rounds, in opening order: the RDP composition the
 * server checks against the fleet budget (open and finalized rounds count; rounds closed below their
 * quorum never release anything and do not).
 */
export function fleetPrivacySeries(rounds: RoundJson[]): Array<{ roundId: string; createdAt: number; epsilon: number; delta: number }> {
  const ordered = [...rounds].filter((r) => r.state !== 'closed').sort((a, b) => a.createdAt - b.createdAt);
  const spent: ReturnType<typeof roundPrivacyParams>[] = [];
  const out: Array<{ roundId: string; createdAt: number; epsilon: number; delta: number }> = [];
  for (const r of ordered) {
    let config: RoundConfig;
    try {
      config = roundConfigOf(r);
    } catch {
      continue;
    }
    if (config.dp.mode === 'off') continue;
    spent.push(roundPrivacyParams({ config }));
    const delta = config.dp.delta;
    out.push({ roundId: r.roundId, createdAt: r.createdAt, epsilon: privacySpent({ rounds: spent, delta }).epsilon, delta });
  }
  return out;
}

export const stateLabel: Record<string, string> = { open: 'Open', closed: 'Closed below quorum', finalized: 'Finalized' };
