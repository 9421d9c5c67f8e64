// A full round on one machine: N robots x P parameters, from the officer opening the round to the
// signed release, against an in-process server on a loopback port — through the same code paths as
// the CLI (tensorguard demo --task synthetic: officer round open, robot push, officer close, review =
// verify manifest + re-add + decrypt + unpack + report, officer release; then robots pull).
//
//   npx tsx bench/full-round.ts [--robots=100] [--params=1000000] [--quick]
// prints one JSON object. `--quick` (what `npm run bench` with no arguments uses) runs 10 robots x
// 100,000 parameters so the whole suite stays bounded. Enrollment and key generation happen before the
// round opens and are reported apart (enrollment seals each robot's keys with scrypt N=2^17).
// Robots push one after another (one machine, two cores: their encryption would compete anyway).
import { createContext } from '../cli/context.ts';
import { runDemo } from '../cli/commands/demo.ts';

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (!hit) return fallback;
  const value = Number(hit.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`"--${name}" expected a positive integer, got ${hit}`);
  return value;
}

const quick = process.argv.includes('--quick');
const robots = arg('robots', quick ? 10 : 100);
const params = arg('params', quick ? 100_000 : 1_000_000);
const ctx = createContext({ json: true, quiet: true, home: '/nonexistent-bench-home' });
const started = performance.now();
const result = (await runDemo(ctx, { robots, params, rounds: 1, task: 'synthetic', dpMode: 'off' } as never)) as {
  stageMs: Record<string, number>;
  trainableParams: number;
  wireBytesPerParam: number;
};
const s = result.stageMs;
const ms = (name: string) => s[name] ?? 0;
// Open to signed release: the round's configuration signed and posted, every robot's update built
// (synthetic local update), encrypted, signed and pushed, the round closed, the officer's review, the release signed and posted.
const openToRelease = ms('round_open') + ms('robot_train') + ms('robot_push') + ms('round_close') + ms('officer_review') + ms('officer_release');
const totalParams = robots * result.trainableParams;
console.log(
  JSON.stringify(
    {
      bench: 'full-round',
      robots,
      paramsPerRobot: result.trainableParams,
      quick,
      openToReleaseSeconds: openToRelease / 1000,
      targetFirstBarSeconds: 60,
      targetGoalSeconds: 15,
      perRobotPushMs: ms('robot_push') / robots,
      perRobotTrainMs: ms('robot_train') / robots,
      officerReviewMs: ms('officer_review'),
      officerReleaseMs: ms('officer_release'),
      roundCloseMs: ms('round_close'),
      robotPullMs: ms('robot_pull'),
      setupMs: { serverStart: ms('server_start'), bootstrap: ms('bootstrap'), officerKeygen: ms('officer_keygen'), enroll: ms('enroll') },
      paramsPerSecondOpenToRelease: Math.round(totalParams / (openToRelease / 1000)),
      wireBytesPerParam: result.wireBytesPerParam,
      wallSeconds: (performance.now() - started) / 1000,
      stageMs: s,
    },
    null,
    2,
  ),
);
