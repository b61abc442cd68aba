// A Lambda container stand-in for tests: loads the built handler (dist/, or the
// module named by LAMBDA_HANDLER_MODULE, e.g. the esbuild bundle), then
// answers one JSON line per event on stdin with one JSON line on stdout:
//   {"ok":true,"response":{...}}  or  {"ok":false,"error":"..."}
// Configuration comes from the environment, as in Lambda.
// A control line {"killAtRequest":k} before an event makes the container SIGKILL itself as
// the handler starts its k-th HTTP request of that invocation: a kill mid-batch at a point
// chosen by the test, not by a timer racing the handler.
import http from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

let killAtRequest;
let requests = 0;
// Patched before the handler loads: the AWS SDK's HTTP handler looks http.request up lazily.
const request = http.request;
http.request = function countedRequest(...args) {
  requests++;
  if (killAtRequest !== undefined && requests >= killAtRequest) process.kill(process.pid, 'SIGKILL');
  return request.apply(this, args);
};

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { handler } = await import(process.env.LAMBDA_HANDLER_MODULE ?? join(root, 'dist', 'src', 'lambda', 'handler.js'));
const context = { getRemainingTimeInMillis: () => 60_000 };
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const lines = createInterface({ input: process.stdin });
// One invocation at a time, as a Lambda container does.
for await (const line of lines) {
  if (line.trim() === '') continue;
  const message = JSON.parse(line);
  if (typeof message.killAtRequest === 'number') {
    killAtRequest = message.killAtRequest;
    continue;
  }
  requests = 0;
  try {
    const response = await handler(message, context);
    process.stdout.write(`${JSON.stringify({ ok: true, response })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(error?.stack ?? error) })}\n`);
  } finally {
    killAtRequest = undefined;
  }
}
