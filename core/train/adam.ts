// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1) over named float32
// parameter arrays, with the optimizer state in float64.

export interface Parameter {
  name: string;
  data: Float32Array;
  grad: Float64Array;
}

export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;
  constructor(
    readonly params: Parameter[],
    readonly options: { learningRate: number; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number },
  ) {
    this.m = params.map((p) => new Float64Array(p.data.length));
    this.v = params.map((p) => new Float64Array(p.data.length));
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  step(learningRate = this.options.learningRate): void {
    const b1 = this.options.beta1 ?? 0.9;
    const b2 = this.options.beta2 ?? 0.999;
    const eps = this.options.epsilon ?? 1e-8;
    const wd = this.options.weightDecay ?? 0;
    this.t++;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    this.params.forEach((p, idx) => {
      const m = this.m[idx]!;
      const v = this.v[idx]!;
      for (let i = 0; i < p.data.length; i++) {
        const g = p.grad[i]! + wd * p.data[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * g;
        v[i] = b2 * v[i]! + (1 - b2) * g * g;
        p.data[i]! -= (learningRate * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps);
      }
    });
  }
}
