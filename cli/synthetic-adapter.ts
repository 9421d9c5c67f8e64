// Synthetic PEFT LoRA adapters for `tensorguard demo` and the benchmarks: a Llama-style layout
// (q_proj and v_proj per layer) sized to a requested number of trainable parameters, values drawn from
// the CSPRNG. Real training arrives with the reference task (a later issue); the demo measures the
// encrypted aggregation, which is exact whatever the values are.
import type { PeftAdapter, PeftAdapterConfig } from '../core/peft/adapter.ts';
import { UniformSource } from '../core/random.ts';

function gaussian(random: UniformSource, sigma: number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(random.nextOpenZero()));
    const t = 2 * Math.PI * random.next();
    out[i] = sigma * r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = sigma * r * Math.sin(t);
  }
  return out;
}

export function syntheticAdapter(options: { params: number; rank?: number; hidden?: number }): PeftAdapter {
  const r = options.rank ?? 8;
  const d = options.hidden ?? 128;
  const perModule = 2 * r * d;
  const layers = Math.max(1, Math.round(options.params / (2 * perModule)));
  const random = new UniformSource();
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (let l = 0; l < layers; l++) {
    for (const m of ['q_proj', 'v_proj']) {
      const prefix = `base_model.model.model.layers.${l}.self_attn.${m}`;
      const a = new Float32Array(r * d);
      const bound = 1 / Math.sqrt(d);
      for (let i = 0; i < a.length; i++) a[i] = (2 * random.next() - 1) * bound;
      tensors.set(`${prefix}.lora_A.weight`, a);
      shapes.set(`${prefix}.lora_A.weight`, [r, d]);
      tensors.set(`${prefix}.lora_B.weight`, gaussian(random, 0.02, d * r));
      shapes.set(`${prefix}.lora_B.weight`, [d, r]);
    }
  }
  const config: PeftAdapterConfig = {
    peft_type: 'LORA',
    r,
    lora_alpha: 2 * r,
    lora_dropout: 0.05,
    target_modules: ['q_proj', 'v_proj'],
    base_model_name_or_path: 'tensorguard/synthetic-policy',
    bias: 'none',
    task_type: 'CAUSAL_LM',
    use_rslora: false,
    use_dora: false,
  };
  return { config, tensors, shapes };
}

/** adapter + N(0, sigma^2) on the named tensors: a stand-in for a robot's local fine-tuning step. */
export function perturbAdapter(options: { adapter: PeftAdapter; names: string[]; sigma: number }): { adapter: PeftAdapter; deltas: Map<string, Float32Array> } {
  const random = new UniformSource();
  const tensors = new Map(options.adapter.tensors);
  const deltas = new Map<string, Float32Array>();
  for (const name of options.names) {
    const base = options.adapter.tensors.get(name)!;
    const delta = gaussian(random, options.sigma, base.length);
    const out = new Float32Array(base.length);
    for (let i = 0; i < out.length; i++) out[i] = base[i]! + delta[i]!;
    tensors.set(name, out);
    // what the robot actually sends is float32(base + delta) - base
    for (let i = 0; i < out.length; i++) delta[i] = out[i]! - base[i]!;
    deltas.set(name, delta);
  }
  return { adapter: { config: options.adapter.config, tensors, shapes: new Map(options.adapter.shapes) }, deltas };
}
