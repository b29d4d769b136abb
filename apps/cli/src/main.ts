// Entry point of the `peertrain` command (bin/peertrain.mjs registers tsx and imports this file).
import { runCli } from './cli.ts';

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
// Everything is closed by now; should a stray handle keep the loop alive, do not hang the shell.
setTimeout(() => process.exit(code), 3000).unref();
