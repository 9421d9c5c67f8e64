// Worker-thread entry of the parallel aggregation pool (server/aggregation/parallel-sum.ts): loads the
// TypeScript sources through tsx (no build step, as cli/bin.mjs) and runs sum-worker-main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./sum-worker-main.ts');
