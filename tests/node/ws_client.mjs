// Run GraphQL operations over graphql-transport-ws with the reference client (`graphql-ws`), as a
// browser app would, and print what happens as JSON lines on stdout:
//
//   node tests/node/ws_client.mjs '{"url": "ws://127.0.0.1:8000/graphql", "connectionParams": null,
//                                   "operations": [{"id": "a", "query": "{ __typename }"}]}'
//
//   {"event": "connected"}
//   {"id": "a", "event": "next", "payload": {"data": {"__typename": "Query"}}}
//   {"id": "a", "event": "complete"}
//   {"event": "closed", "code": 1000, "reason": "Normal Closure"}
//
// With `"sockets": n`, n clients (n sockets) each run every operation, and every line names its
// `socket` (0 to n-1); `"summary": true` prints, instead of each result, one line per socket and
// operation at the end: {"socket", "id", "received": [status, ...]} (for load tests).
//
// "error" lines carry what the client reports: a list of GraphQL errors for an operation, or a
// socket error. An operation with `"take": n` is unsubscribed after its n-th result (a subscription
// otherwise runs until the server ends it). The script exits once every operation has completed,
// failed or taken its fill, or the socket closed.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const script = JSON.parse(process.argv[2] ?? '{}');
if (!script.url || !Array.isArray(script.operations)) {
  console.error('usage: node ws_client.mjs \'{"url": ..., "connectionParams": ..., "operations": [...]}\'');
  process.exit(2);
}

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const describe = (error) => {
  if (Array.isArray(error)) return error;
  if (error && typeof error === 'object' && 'code' in error) return { code: error.code, reason: error.reason };
  return { message: String(error?.message ?? error) };
};

const sockets = script.sockets ?? 1;
const summaries = [];

function runSocket(socket) {
  const tag = sockets > 1 ? { socket } : {};
  const say = (line) => print({ ...tag, ...line });
  let settled = false;
  const client = createClient({
    url: script.url,
    webSocketImpl: WebSocket,
    // `null` is sent as such ("payload": null), which the protocol allows.
    connectionParams: () => script.connectionParams ?? null,
    retryAttempts: 0,
    lazy: true,
    on: {
      connected: () => say({ event: 'connected' }),
      closed: (event) => {
        if (!settled) say({ event: 'closed', code: event?.code, reason: event?.reason });
      },
      error: (error) => say({ event: 'error', error: describe(error) }),
    },
  });
  const operations = script.operations.map(
    (operation) =>
      new Promise((resolve) => {
        const { id, take, ...payload } = operation;
        const received = [];
        let count = 0;
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          if (script.summary) summaries.push({ socket, id, received });
          resolve();
        };
        const unsubscribe = client.subscribe(payload, {
          next: (result) => {
            count += 1;
            if (script.summary) {
              received.push(result.errors ? { errors: result.errors } : result.data);
            } else {
              say({ id, event: 'next', payload: result });
            }
            if (take !== undefined && count >= take) {
              unsubscribe();
              finish();
            }
          },
          error: (error) => {
            say({ id, event: 'error', error: describe(error) });
            finish();
          },
          complete: () => {
            if (!script.summary && !finished) say({ id, event: 'complete' });
            finish();
          },
        });
      }),
  );
  return Promise.all(operations).then(async () => {
    settled = true;
    await client.dispose();
  });
}

await Promise.all(Array.from({ length: sockets }, (_, socket) => runSocket(socket)));
// Exit only once stdout is flushed: on a pipe, `process.exit` would drop what is still buffered.
const tail = summaries.map((summary) => `${JSON.stringify(summary)}\n`).join('');
process.stdout.write(tail, () => process.exit(0));
