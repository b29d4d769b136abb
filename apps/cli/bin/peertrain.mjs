#!/usr/bin/env node
// The `peertrain` command. Workspace packages are TypeScript source: register tsx, then run.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
