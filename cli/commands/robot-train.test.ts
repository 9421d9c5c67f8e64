// `tensorguard robot train`: a PEFT adapter trained on the robot's site demonstrations, naming its
// training stage; with --freeze-a, lora_A is bit-identical to the start adapter's.
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../context.ts';
import { loadAdapterDir } from '../home.ts';
import { MODELS_DIR, robotTrain } from './robot-train.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';

describe('robot train', () => {
  it('trains the LoRA adapter on site demonstrations and records the stage', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tg-train-'));
    try {
      const ctx = createContext({ home: join(dir, 'home'), json: true, quiet: true });
      const seed = '07'.repeat(32);
      const out = join(dir, 'trained');
      const res = await robotTrain(ctx, { out, site: 'site-c', episodes: 6, steps: 60, seed, freezeA: true });
      expect(res).toMatchObject({ stage: 'imitation_learning', site: 'site-c', seed, freezeA: true, method: 'behaviour_cloning' });
      expect((res.loss as { final: number }).final).toBeLessThan((res.loss as { initial: number }).initial);
      const trained = await loadAdapterDir(out);
      const start = await loadAdapterDir(join(MODELS_DIR, REFERENCE_POLICY.adapterDir));
      expect(trained.config.tensorguard_training_stage).toBe('imitation_learning');
      for (const [name, data] of start.tensors) {
        if (name.endsWith('lora_A.weight')) expect(trained.tensors.get(name)).toEqual(data);
        else expect(trained.tensors.get(name)!.some((v) => v !== 0)).toBe(true);
      }
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
      expect(config.tensorguard_training).toMatchObject({ method: 'behaviour_cloning', episodes: 6, optimizerSteps: 60, site: 'site-c', freezeA: true });
      await expect(robotTrain(ctx, { out, site: 'mars' })).rejects.toThrow(/--site expects one of site-a, site-b, site-c/);
      await expect(robotTrain(ctx, { out, seed: 'abc' })).rejects.toThrow(/--seed expects 64 hex digits/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
