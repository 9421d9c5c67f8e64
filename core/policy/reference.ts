// Fixed facts of the reference policy shipped in static/models/: file names, sizes, LoRA defaults and the
// seeds its build and its held-out evaluation use. scripts/build-policy-onnx.ts writes the files.
import { seedFrom } from '../sim/random.ts';

export const REFERENCE_POLICY = Object.freeze({
  onnxFile: 'reference-policy.onnx',
  weightsFile: 'reference-policy.safetensors',
  metadataFile: 'reference-policy.json',
  /** PEFT adapter with PEFT's initial values (A seeded, B = 0): the template of a first round. */
  adapterDir: 'reference-policy-adapter',
  hidden: 64,
  loraRank: 4,
  loraAlpha: 8,
});

/** Seed of the base policy's weights, demonstrations and training (the build is reproducible). */
export const BUILD_SEED = seedFrom({ label: 'reference-policy/v1/build' });
/** Seed of the template adapter's A matrices. */
export const ADAPTER_SEED = seedFrom({ label: 'reference-policy/v1/adapter' });
/** Seed of the held-out evaluation scenarios (never used for training). */
export const EVALUATION_SEED = seedFrom({ label: 'reference-policy/v1/held-out' });

/** The training stages of the original design, all built (trainers dispatched by core/train/stages.ts). */
export const TRAINING_STAGES = ['imitation_learning', 'offline_rl', 'on_policy_rl'] as const;
export type TrainingStage = (typeof TRAINING_STAGES)[number];
export const BUILT_TRAINING_STAGES: readonly TrainingStage[] = TRAINING_STAGES;
