// The officer's stages of the round latency breakdown, from the PWA's review flow
// (src/routes/rounds/[id]/review/+page.svelte): decrypt = preparing the review (downloading manifest,
// packages and aggregate) + verifying the manifest and re-adding the sum in the HE worker + decrypting
// there; review = unpacking the candidate in the HE worker + the evaluation gate in the eval worker.
// The page keeps the measured durations on its IndexedDB rows (the review and the candidate), so a
// review done offline is reported when the page is next open online. POST /v1/rounds/:id/timings takes
// the report once: 201, or 409 `stage_already_reported` (a report from this officer is already there,
// e.g. from the CLI) both settle it; other refusals (4xx) settle it too, since they will not change;
// offline and 5xx leave it for the next visit.
import { ApiError, isOffline, postJson } from '$lib/api.ts';
import { validateStageReport, type StageReport } from '../../../../core/round/latency.ts';

export type TimingsReport = 'reported' | 'refused';

export function officerReviewStages(options: { prepareMs: number; verifyMs: number; decryptMs: number; unpackMs: number; gateMs: number }): StageReport[] {
  const ms = (x: number) => Math.round(Math.max(0, x) * 1000) / 1000;
  return validateStageReport({
    actorKind: 'officer',
    stages: [
      { stage: 'decrypt', durationMs: ms(options.prepareMs + options.verifyMs + options.decryptMs) },
      { stage: 'review', durationMs: ms(options.unpackMs + options.gateMs) },
    ],
  });
}

/** Sends the officer's stages; null when it should be tried again later (offline, server trouble). */
export async function reportReviewTimings(options: { roundId: string; stages: StageReport[] }): Promise<TimingsReport | null> {
  try {
    await postJson(`/v1/rounds/${encodeURIComponent(options.roundId)}/timings`, { stages: options.stages });
    return 'reported';
  } catch (err) {
    if (isOffline(err)) return null;
    if (err instanceof ApiError && err.code === 'stage_already_reported') return 'reported';
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 429) return 'refused';
    return null;
  }
}
