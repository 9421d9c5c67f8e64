// Robot records from the API, decoded for the workers (public keys and attestations as bytes).
import { fromBase64 } from '../../core/bytes.ts';
import type { ReleaseRobot } from '../../core/round/release.ts';
import type { RobotJson } from './types.ts';

export function releaseRobots(robots: RobotJson[]): ReleaseRobot[] {
  return robots.map((r) => ({
    id: r.id,
    enrollmentId: r.enrollmentId,
    dsaPublicKey: fromBase64(r.dsaPublicKey),
    kemPublicKey: fromBase64(r.kemPublicKey),
    attestation: fromBase64(r.attestation),
    revokedAt: r.revokedAt,
  }));
}
