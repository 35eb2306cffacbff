#!/usr/bin/env node
// Runs the compiled server image entrypoint; `npm run build` (or `npm ci` through prepare) builds dist/.
import { main } from '../../dist/server-image/src/main.js';

process.exitCode = await main(process.env);
// Open handles (a Redis reconnect timer) must not keep a stopped server alive.
process.exit(process.exitCode);
