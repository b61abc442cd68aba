// A Lambda container stand-in for tests: loads the built handler (dist/, or the
// module named by LAMBDA_HANDLER_MODULE, e.g. the esbuild bundle), then
// answers one JSON line per event on stdin with one JSON line on stdout:
//   {"ok":true,"response":{...}}  or  {"ok":false,"error":"..."}
// Configuration comes from the environment, as in Lambda.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { handler } = await import(process.env.LAMBDA_HANDLER_MODULE ?? join(root, 'dist', 'src', 'lambda', 'handler.js'));
const context = { getRemainingTimeInMillis: () => 60_000 };
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const lines = createInterface({ input: process.stdin });
// One invocation at a time, as a Lambda container does.
for await (const line of lines) {
  if (line.trim() === '') continue;
  try {
    const response = await handler(JSON.parse(line), context);
    process.stdout.write(`${JSON.stringify({ ok: true, response })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(error?.stack ?? error) })}\n`);
  }
}
