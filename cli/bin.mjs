#!/usr/bin/env node
// Entry point of the `tensorguard` command: runs the TypeScript sources through tsx, no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
await main(process.argv);
