// The `tensorguard` command line: parses arguments (commander), runs one command, prints its result
// for a person or, with --json, as one JSON document on stdout. Errors exit non-zero with their code.
import { Command, InvalidArgumentError, Option } from 'commander';
import { createContext, CliError, type CommandContext } from './context.ts';
import { ApiError } from './api.ts';
import { TensorGuardError } from '../core/errors.ts';

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} expects an integer, got ${v}`);
    return n;
  };
}
function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} expects a number, got ${v}`);
    return n;
  };
}
function collect(v: string, prev: string[] = []) {
  return [...prev, v];
}

function print(ctx: CommandContext, result: unknown): void {
  if (ctx.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return;
  }
  const lines: string[] = [];
  const walk = (v: unknown, prefix: string) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, prefix ? `${prefix}.${k}` : k);
    } else if (Array.isArray(v) && v.some((x) => x && typeof x === 'object')) {
      v.forEach((x, i) => walk(x, `${prefix}[${i}]`));
    } else {
      lines.push(`${prefix}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    }
  };
  walk(result, '');
  process.stdout.write(lines.join('\n') + '\n');
}

export function buildProgram(): Command {
  const program = new Command('tensorguard')
    .description('Federated LoRA for robot fleets: homomorphically encrypted updates, post-quantum signed releases')
    .option('--home <dir>', 'key and config directory (default $TG_HOME or ~/.tensorguard)')
    .option('--json', 'machine-readable JSON output')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError();

  const run = <T extends object>(fn: (ctx: CommandContext, opts: T) => Promise<unknown>) =>
    async function (this: Command) {
      const all = this.optsWithGlobals() as T & { home?: string; json?: boolean };
      const ctx = createContext({ home: all.home, json: all.json });
      print(ctx, await fn(ctx, all));
    };

  program
    .command('server')
    .description('run the sync server (the HTTP API under /v1, /healthz, /readyz) on one port')
    .option('--port <n>', 'port (default $PORT or 8787)', int('--port'))
    .option('--host <host>', 'listen address (default $HOST or 0.0.0.0)')
    .option('--data-dir <dir>', 'data directory (default $DATA_DIR or ./data)')
    .action(async function (this: Command) {
      const o = this.optsWithGlobals() as { port?: number; host?: string; dataDir?: string; json?: boolean };
      const { runServerCommand } = await import('./commands/server.ts');
      await runServerCommand({ port: o.port, host: o.host, dataDir: o.dataDir, json: !!o.json });
    });

  const admin = program.command('admin').description('organization administration');
  admin
    .command('bootstrap')
    .description('create the organization and its first admin (works only while the server has no user)')
    .requiredOption('--server <url>', 'server URL')
    .requiredOption('--org <name>', 'organization name')
    .requiredOption('--user <name>', 'first admin user name (also an officer)')
    .action(run(async (ctx, o: { server: string; org: string; user: string }) => (await import('./commands/session.ts')).adminBootstrap(ctx, o)));
  admin
    .command('backup')
    .description('(operator, on the server host) consistent snapshot of the database and every blob it references, also while the server runs')
    .requiredOption('--out <file>', 'backup file to write (mode 0600; it holds the server audit key)')
    .option('--data-dir <dir>', 'server data directory (default $DATA_DIR or ./data); blobs from TG_BLOB_STORE / S3_* like the server')
    .action(run(async (ctx, o: { out: string; dataDir?: string }) => (await import('./commands/admin-backup.ts')).adminBackup(ctx, o)));
  admin
    .command('restore')
    .description('(operator) restore a backup into a fresh data directory (blobs into TG_BLOB_STORE / S3_* or <dir>/blobs)')
    .requiredOption('--from <file>', 'backup file')
    .requiredOption('--data-dir <dir>', 'fresh data directory to create')
    .action(run(async (ctx, o: { from: string; dataDir: string }) => (await import('./commands/admin-backup.ts')).adminRestore(ctx, o)));

  program
    .command('login')
    .description('sign in and keep the session in the home directory')
    .requiredOption('--server <url>', 'server URL')
    .requiredOption('--user <name>', 'user name')
    .action(run(async (ctx, o: { server: string; user: string }) => (await import('./commands/session.ts')).login(ctx, o)));

  const user = program.command('user').description('users of the organization');
  user
    .command('add')
    .description('add a user (password from TG_PASSWORD or a prompt)')
    .requiredOption('--user <name>', 'user name')
    .addOption(new Option('--role <role>', 'role (repeatable)').choices(['admin', 'officer', 'operator', 'auditor']).argParser(collect as never).makeOptionMandatory())
    .action(run(async (ctx, o: { user: string; role: string[] }) => (await import('./commands/session.ts')).userAdd(ctx, o)));

  const fleet = program.command('fleet').description('robot fleets');
  fleet
    .command('create')
    .description('create a fleet (prints its id)')
    .requiredOption('--name <name>', 'fleet name')
    .option('--max-update-bytes <n>', 'operating envelope: largest encrypted update in bytes (default 5 MB)', int('--max-update-bytes'))
    .option('--max-params <n>', 'operating envelope: most trainable parameters (default 10 M)', int('--max-params'))
    .option('--dp-epsilon-budget <e>', 'fleet-wide DP epsilon budget', num('--dp-epsilon-budget'))
    .action(run(async (ctx, o: { name: string; maxUpdateBytes?: number; maxParams?: number; dpEpsilonBudget?: number }) => (await import('./commands/session.ts')).fleetCreate(ctx, o)));

  const officer = program.command('officer').description('the security officer: keys, rounds, review, release');
  officer
    .command('init')
    .description('generate the officer signing key and an HE key pair; register the signed HE key record (run again to rotate)')
    .action(run(async (ctx) => (await import('./commands/officer.ts')).officerInit(ctx)));
  officer
    .command('enroll-bundle')
    .description('write an enrollment bundle for one robot (server URL, fleet, one-time token, pinned officer keys)')
    .requiredOption('--fleet <id>', 'fleet id')
    .requiredOption('--out <file>', 'bundle file to write (mode 0600)')
    .action(run(async (ctx, o: { fleet: string; out: string }) => (await import('./commands/officer.ts')).officerEnrollBundle(ctx, o)));
  const round = officer.command('round').description('open and close rounds');
  round
    .command('open')
    .description('open a round (prints the round id)')
    .requiredOption('--fleet <id>', 'fleet id')
    .requiredOption('--template <dir>', 'the round\'s base PEFT adapter (its values never leave this machine)')
    .requiredOption('--quorum <k>', 'distinct robots required', int('--quorum'))
    .option('--max-contributors <n>', 'most contributions the packing must hold (2..1024, default: robots enrolled in the fleet)', int('--max-contributors'))
    .option('--freeze-a', 'FFA-LoRA: freeze lora_A (seeded), robots send lora_B only')
    .addOption(new Option('--dp-mode <mode>', 'differential privacy').choices(['off', 'local', 'distributed']).default('off'))
    .option('--clip <c>', 'L2 clip of the whole update', num('--clip'))
    .option('--noise-multiplier <z>', 'noise standard deviation / clip', num('--noise-multiplier'))
    .option('--delta <d>', 'DP delta', num('--delta'))
    .option('--epsilon-budget <e>', 'per-robot epsilon budget', num('--epsilon-budget'))
    .option('--sparsity <f>', 'fraction of values sent (shared mask, error feedback)', num('--sparsity'))
    .option('--field-bits <b>', 'bits per quantized value', int('--field-bits'))
    .option('--range <r>', 'largest absolute value a robot sends (sets the quantization scale)', num('--range'))
    .option('--deadline <iso>', 'deadline (ISO 8601)')
    .addOption(new Option('--stage <stage>', 'training stage robots run (on_policy_rl needs --approve-on-policy)').choices(['imitation_learning', 'offline_rl', 'on_policy_rl']).default('imitation_learning'))
    .option('--approve-on-policy <reason>', 'the officer\'s signed approval of on-policy training on robots, with its reason')
    .action(run(async (ctx, o: Record<string, unknown>) => (await import('./commands/officer.ts')).officerRoundOpen(ctx, o as never)));
  round
    .command('close')
    .description('close a round and finalize its aggregate (needs the quorum)')
    .requiredOption('--round <id>', 'round id')
    .action(run(async (ctx, o: { round: string }) => (await import('./commands/officer.ts')).officerRoundClose(ctx, o)));
  officer
    .command('review')
    .description('verify the contribution manifest, re-add and decrypt the aggregate, write the candidate adapter and report.json')
    .requiredOption('--round <id>', 'round id')
    .requiredOption('--out <dir>', 'output directory')
    .option('--gate-scenarios <n>', 'held-out scenarios per set for the evaluation gate (default 60 nominal, 30 per site, 45 OOD)', int('--gate-scenarios'))
    .option('--eval-model <id>', "customer evaluation model for the gate (default: the fleet's active one; 'reference' for the reference task)")
    .action(run(async (ctx, o: { round: string; out: string; gateScenarios?: number; evalModel?: string }) => (await import('./commands/officer.ts')).officerReview(ctx, o)));
  // Customer evaluation models (cli/commands/officer-eval.ts).
  const evalModel = officer.command('eval-model').description("customer evaluation models of a fleet: an ONNX policy and an encrypted scenario set");
  const officerEval = () => import('./commands/officer-eval.ts');
  evalModel
    .command('register')
    .description('validate the ONNX model against the contract, encrypt the scenario set to your officer key, sign and register both')
    .requiredOption('--fleet <id>', 'fleet id')
    .requiredOption('--onnx <file>', 'ONNX policy model (obs -> mean, log_std; LoRA matrices as inputs)')
    .requiredOption('--scenarios <file>', 'scenario set JSON (tensorguard-scenario-set/v1)')
    .option('--name <name>', 'display name (default: the scenario set name)')
    .action(run(async (ctx, o: { fleet: string; onnx: string; scenarios: string; name?: string }) => (await officerEval()).officerEvalModelRegister(ctx, o)));
  evalModel
    .command('list')
    .description("a fleet's evaluation models, newest first (the active one is used by reviews)")
    .requiredOption('--fleet <id>', 'fleet id')
    .action(run(async (ctx, o: { fleet: string }) => (await officerEval()).officerEvalModelList(ctx, o)));
  evalModel
    .command('retire')
    .description('retire an evaluation model (audited); reviews stop using it by default')
    .requiredOption('--id <id>', 'evaluation model id')
    .requiredOption('--reason <reason>', 'why')
    .action(run(async (ctx, o: { id: string; reason: string }) => (await officerEval()).officerEvalModelRetire(ctx, o)));
  officer
    .command('release')
    .description('sign and publish the reviewed candidate, its key wrapped for each enrolled robot')
    .requiredOption('--round <id>', 'round id')
    .option('--canary <fraction>', 'canary fraction recorded in the release', num('--canary'))
    .option('--override-gate <reason>', 'release although the evaluation gate failed; the reason is signed into the manifest and audited')
    .action(run(async (ctx, o: { round: string; canary?: number; overrideGate?: string }) => (await import('./commands/officer.ts')).officerRelease(ctx, o)));

  officer
    .command('promote')
    .description('promote a canary release: sign the next version with the same adapter, wrapped for every enrolled robot')
    .requiredOption('--release <id>', 'the canary release id')
    .action(run(async (ctx, o: { release: string }) => (await import('./commands/officer-deploy.ts')).officerPromote(ctx, o)));
  officer
    .command('rollback')
    .description("sign a rollback: the next version restores release version N's adapter (robots accept it because it is newer)")
    .requiredOption('--fleet <id>', 'fleet id')
    .requiredOption('--to-version <n>', 'the release version to restore', int('--to-version'))
    .action(run(async (ctx, o: { fleet: string; toVersion: number }) => (await import('./commands/officer-deploy.ts')).officerRollback(ctx, o)));
  officer
    .command('canary')
    .description("a release's canary status: robots, telemetry and the rollback triggers the server flags")
    .requiredOption('--release <id>', 'release id')
    .action(run(async (ctx, o: { release: string }) => (await import('./commands/officer-deploy.ts')).officerCanary(ctx, o)));
  officer
    .command('reject')
    .description('sign and publish the rejection of a finalized round (its one decision, instead of a release)')
    .requiredOption('--round <id>', 'round id')
    .requiredOption('--reason <text>', 'why the round is not released')
    .action(run(async (ctx, o: { round: string; reason: string }) => (await import('./commands/officer.ts')).officerReject(ctx, o)));
  officer
    .command('export-backup')
    .description('write the officer key backup (sealed under TG_BACKUP_PASSPHRASE, else the officer passphrase); the PWA imports it')
    .requiredOption('--out <file>', 'backup file to write (mode 0600)')
    .action(run(async (ctx, o: { out: string }) => (await import('./commands/officer.ts')).officerExportBackup(ctx, o)));
  officer
    .command('import-backup')
    .description('import an officer key backup (from the PWA or another home) into this home')
    .requiredOption('--file <file>', 'backup file')
    .option('--force', 'replace the keys of another officer already in this home')
    .action(run(async (ctx, o: { file: string; force?: boolean }) => (await import('./commands/officer.ts')).officerImportBackup(ctx, o)));

  // Key lifecycle (cli/commands/officer-keys.ts).
  const officerKeys = () => import('./commands/officer-keys.ts');
  officer
    .command('rotate-he-key')
    .description('create the next HE key version (same as re-running init); new rounds pin it, old secret keys stay to review old rounds')
    .action(run(async (ctx) => (await officerKeys()).officerRotateHeKey(ctx)));
  officer
    .command('revoke-he-key')
    .description('sign and publish the revocation of an HE key version: the server and robots refuse it from now on')
    .requiredOption('--version <n>', 'HE key version', int('--version'))
    .requiredOption('--reason <text>', 'why the key is revoked')
    .action(run(async (ctx, o: { version: number; reason: string }) => (await officerKeys()).officerRevokeHeKey(ctx, o)));
  officer
    .command('he-keys')
    .description('list HE key versions, their revocations and the rounds pinned to each')
    .action(run(async (ctx) => (await officerKeys()).officerHeKeys(ctx)));
  const recovery = officer.command('recovery').description('recover the officer keys through designated recovery officers (ML-KEM-768)');
  recovery
    .command('keygen')
    .description('(recovery officer) create an ML-KEM-768 recovery key in this home; writes its public key file')
    .requiredOption('--out <file>', 'public key file to give the officer')
    .option('--force', 'replace the recovery key already in this home')
    .action(run(async (ctx, o: { out: string; force?: boolean }) => (await officerKeys()).recoveryKeygen(ctx, o)));
  recovery
    .command('add')
    .description('designate a recovery officer by their ML-KEM-768 public key file (audited)')
    .requiredOption('--kem-public-key <file>', 'the recovery officer\'s public key file')
    .option('--name <name>', 'a label for this recovery officer')
    .action(run(async (ctx, o: { kemPublicKey: string; name?: string }) => (await officerKeys()).recoveryAdd(ctx, o)));
  recovery
    .command('remove')
    .description('stop wrapping later exports to a recovery key (audited)')
    .requiredOption('--id <id>', 'recovery key id (or a prefix)')
    .action(run(async (ctx, o: { id: string }) => (await officerKeys()).recoveryRemove(ctx, o)));
  recovery
    .command('export')
    .description('write the officer secrets wrapped to every designated recovery officer (audited)')
    .requiredOption('--out <file>', 'recovery package to write (mode 0600)')
    .action(run(async (ctx, o: { out: string }) => (await officerKeys()).recoveryExport(ctx, o)));
  recovery
    .command('restore')
    .description('(recovery officer) restore the officer keys from a recovery package into this home (audited)')
    .requiredOption('--from <file>', 'recovery package')
    .option('--force', 'replace the keys of another officer already in this home')
    .action(run(async (ctx, o: { from: string; force?: boolean }) => (await officerKeys()).recoveryRestore(ctx, o)));

  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('verify the signed audit log against the head this home verified last (admin or auditor); exits 3 on an alarm')
    .option('--full', 're-fetch and rehash every leaf, not only those since the last verified head')
    .action(run(async (ctx, o: { full?: boolean }) => (await import('./commands/audit.ts')).auditVerify(ctx, o)));

  const robot = program.command('robot').description('a robot of the fleet');
  robot
    .command('enroll')
    .description('enroll with a bundle from the officer')
    .requiredOption('--bundle <file>', 'enrollment bundle')
    .option('--name <name>', 'robot name')
    .action(run(async (ctx, o: { bundle: string; name?: string }) => (await import('./commands/robot.ts')).robotEnroll(ctx, o)));
  robot
    .command('start')
    .description('write the open round\'s start adapter (with the frozen lora_A for FFA-LoRA rounds)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--base <dir>', 'base adapter (default: the last pulled release)')
    .option('--round <id>', 'round id (default: the newest open round)')
    .action(run(async (ctx, o: { out: string; base?: string; round?: string }) => (await import('./commands/robot.ts')).robotStart(ctx, o)));
  robot
    .command('push')
    .description('send the encrypted update (adapter - base) to the open round; retries, and keeps it in the outbox if the server stays unreachable (exit 75)')
    .option('--adapter <dir>', 'trained PEFT adapter (required unless --resume)')
    .option('--base <dir>', 'base adapter (default: the last pulled release)')
    .option('--round <id>', 'round id (default: the newest open round)')
    .option('--resume', 'only resend the pushes waiting in the outbox')
    .action(run(async (ctx, o: { adapter?: string; base?: string; round?: string; resume?: boolean }) => (await import('./commands/robot.ts')).robotPush(ctx, o)));
  robot
    .command('pull')
    .description('fetch, verify and decrypt the latest release; it becomes the base for the next round')
    .requiredOption('--out <dir>', 'output directory')
    .action(run(async (ctx, o: { out: string }) => (await import('./commands/robot.ts')).robotPull(ctx, o)));
  robot
    .command('agent')
    .description('run as the robot\'s long-running participant: unseal the keys once, push to each new open round, pull each newer release (Ctrl-C stops)')
    .option('--adapter <dir>', 'the adapter to push to each new round (the site\'s own training output)')
    .option('--train', 'train for each round with robot train (the round\'s signed stage) instead of --adapter')
    .option('--site <name>', 'with --train: the site layouts the robot trains on')
    .option('--episodes <n>', 'with --train: episodes (see robot train)', int('--episodes'))
    .option('--steps <n>', 'with --train: optimizer steps (see robot train)', int('--steps'))
    .option('--iterations <n>', 'with --train: PPO iterations for on-policy rounds', int('--iterations'))
    .option('--base <dir>', 'base adapter while no release has been pulled (the fleet\'s template)')
    .option('--out <dir>', 'where pulled releases go, one directory per version (default <home>/robot/releases)')
    .option('--poll-seconds <s>', 'seconds between checks (default 15)', int('--poll-seconds'))
    .option('--once', 'one check, then exit')
    .option('--precompute <n>', 'encryptions of zero to keep ready between rounds, in memory (default: as many as the last round needed; 0: off)', int('--precompute'))
    .action(async function (this: Command) {
      // Not run(): the agent prints its events as they happen, the summary (`stopped`) last, one line each.
      const all = this.optsWithGlobals() as Record<string, unknown> & { home?: string; json?: boolean };
      await (await import('./commands/robot-agent.ts')).robotAgent(createContext({ home: all.home, json: all.json }), all as never);
    });
  robot
    .command('report')
    .description('report one window of canary telemetry for a release this robot runs (robot-signed)')
    .requiredOption('--release <id>', 'release id')
    .requiredOption('--success-rate <x>', 'fraction of successful runs in [0, 1]', num('--success-rate'))
    .requiredOption('--safety-events <n>', 'safety events in the window', int('--safety-events'))
    .requiredOption('--p99-ms <ms>', 'p99 latency in milliseconds', num('--p99-ms'))
    .option('--runs <n>', 'runs in the window (default 100)', int('--runs'))
    .action(run(async (ctx, o: { release: string; successRate: number; safetyEvents: number; p99Ms: number; runs?: number }) => (await import('./commands/robot-report.ts')).robotReport(ctx, o)));
  robot
    .command('validate')
    .description('validate motion commands against the fleet\'s safety cell (through a safety session; --signed signs each request)')
    .requiredOption('--request <file>', 'JSON: one safety request, an array of up to 64, or {requests: [...]}')
    .option('--heartbeat <estop>', 'report the e-stop state first (armed, engaged, fault, unavailable)')
    .option('--signed', 'sign the request with ML-DSA-44 instead of opening a safety session')
    .action(run(async (ctx, o: { request: string; signed?: boolean; heartbeat?: string }) => (await import('./commands/robot-validate.ts')).robotValidate(ctx, o)));
  robot
    .command('train')
    .description('fine-tune the reference policy\'s LoRA adapter with the round\'s training stage (behaviour cloning, offline RL, on-policy RL); writes a PEFT adapter to push')
    .requiredOption('--out <dir>', 'output directory for the trained adapter')
    .option('--base <dir>', 'start adapter (default: the last pulled release, else the shipped template); use the output of robot start for a round')
    .option('--episodes <n>', 'demonstrations (imitation, default 40), logged episodes (offline RL, default 40) or rollouts per iteration (on-policy, default 16)', int('--episodes'))
    .option('--steps <n>', 'optimizer steps (imitation default 1500, offline RL default 600)', int('--steps'))
    .option('--iterations <n>', 'on-policy RL: PPO iterations (default 10)', int('--iterations'))
    .option('--seed <hex>', '32-byte seed in hex (default: random)')
    .option('--site <name>', 'the site layouts the demonstrations come from (site-a, site-b, site-c; default nominal)')
    .option('--freeze-a', 'train lora_B only, keeping lora_A of the start adapter (FFA-LoRA rounds)')
    .option('--round <id>', 'train for this round: its officer-signed config names the stage (and approves on-policy training)')
    .option('--round-config <file>', 'train for the round whose signed config is in FILE (verified against the pinned officer keys)')
    .option('--stage <stage>', 'imitation_learning (default), offline_rl, or on_policy_rl (only with --round/--round-config carrying the officer\'s approval)')
    .action(run(async (ctx, o: Record<string, unknown>) => (await import('./commands/robot-train.ts')).robotTrain(ctx, o as never)));

  const dp = program.command('dp').description('differential privacy tools');
  dp.command('epsilon')
    .description('epsilon of the Poisson-subsampled Gaussian mechanism (RDP accountant)')
    .requiredOption('--noise-multiplier <z>', 'noise multiplier', num('--noise-multiplier'))
    .requiredOption('--sample-rate <q>', 'sampling rate', num('--sample-rate'))
    .requiredOption('--steps <t>', 'steps', int('--steps'))
    .requiredOption('--delta <d>', 'delta', num('--delta'))
    .action(
      run(async (_ctx, o: { noiseMultiplier: number; sampleRate: number; steps: number; delta: number }) => {
        const { gaussianEpsilon } = await import('../core/dp/accountant.ts');
        return gaussianEpsilon({ noiseMultiplier: o.noiseMultiplier, sampleRate: o.sampleRate, steps: o.steps, delta: o.delta });
      }),
    );

  program
    .command('demo')
    .description('run complete rounds against a real server on a loopback port with N robot homes')
    .option('--robots <n>', 'robots', int('--robots'), 3)
    .option('--params <p>', 'synthetic task: trainable parameters per adapter (approximate)', int('--params'), 100_000)
    .option('--rounds <r>', 'rounds', int('--rounds'), 1)
    .addOption(new Option('--task <task>', 'reference: robots train the reference policy on their own sites and the demo measures held-out task success (HE/DP vs plaintext); synthetic: random updates of a Llama-style adapter of --params').choices(['reference', 'synthetic']).default('reference'))
    .option('--episodes <n>', 'reference task: demonstration episodes per robot (default 40)', int('--episodes'))
    .option('--train-steps <n>', 'reference task: optimizer steps per robot (default 1500)', int('--train-steps'))
    .addOption(new Option('--stage <stage>', 'reference task: the rounds\' training stage (on_policy_rl rounds carry the demo officer\'s signed approval)').choices(['imitation_learning', 'offline_rl', 'on_policy_rl']).default('imitation_learning'))
    .option('--gate-scenarios <n>', 'reference task: held-out scenarios per set (default 60 nominal, 30 per site, 45 OOD)', int('--gate-scenarios'))
    .addOption(new Option('--dp-mode <mode>', 'differential privacy').choices(['off', 'local', 'distributed']).default('off'))
    .option('--clip <c>', 'DP: L2 clip of each robot\'s update (default 1)', num('--clip'))
    .option('--noise-multiplier <z>', 'DP: noise standard deviation / clip (default 1)', num('--noise-multiplier'))
    .option('--epsilon-budget <e>', 'DP: per-robot epsilon budget (default 10)', num('--epsilon-budget'))
    .option('--freeze-a', 'FFA-LoRA rounds')
    .option('--sparsity <f>', 'fraction of values sent', num('--sparsity'))
    .option('--field-bits <b>', 'bits per quantized value', int('--field-bits'))
    .option('--keep <dir>', 'keep the data directory and homes here instead of a temporary directory')
    .action(run(async (ctx, o: Record<string, unknown>) => (await import('./commands/demo.ts')).runDemo(ctx, o as never)));

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const json = argv.includes('--json');
    const code =
      err instanceof CliError || err instanceof ApiError || err instanceof TensorGuardError
        ? (err as { code: string }).code
        : err instanceof RangeError || err instanceof TypeError
          ? 'invalid_argument'
          : 'error';
    const message = err instanceof Error ? err.message : String(err);
    if (json) process.stdout.write(JSON.stringify({ error: { code, message } }) + '\n');
    else process.stderr.write(`tensorguard: ${message}${code !== 'error' ? ` [${code}]` : ''}\n`);
    if (process.env.TG_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  }
}
