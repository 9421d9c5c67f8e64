// Worker-thread entry of the update-package verification pool (server/aggregation/verify-pool.ts):
// loads the TypeScript sources through tsx (no build step, as cli/bin.mjs) and runs verify-worker-main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./verify-worker-main.ts');
