// Worker-thread entry of bench/full-round.ts (its simulated robots): loads the TypeScript sources
// through tsx (no build step, as cli/bin.mjs) and runs the same file, which sees it is not the main thread.
import { register } from 'tsx/esm/api';

register();
await import('./full-round.ts');
