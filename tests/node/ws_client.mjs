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

let settled = false;
const client = createClient({
  url: script.url,
  webSocketImpl: WebSocket,
  // `null` is sent as such ("payload": null), which the protocol allows.
  connectionParams: () => script.connectionParams ?? null,
  retryAttempts: 0,
  lazy: true,
  on: {
    connected: () => print({ event: 'connected' }),
    closed: (event) => {
      print({ event: 'closed', code: event?.code, reason: event?.reason });
      if (!settled) process.exit(0);
    },
    error: (error) => print({ event: 'error', error: describe(error) }),
  },
});

await Promise.all(
  script.operations.map(
    (operation) =>
      new Promise((resolve) => {
        const { id, take, ...payload } = operation;
        let received = 0;
        const unsubscribe = client.subscribe(payload, {
          next: (result) => {
            print({ id, event: 'next', payload: result });
            received += 1;
            if (take !== undefined && received >= take) {
              unsubscribe();
              resolve();
            }
          },
          error: (error) => {
            print({ id, event: 'error', error: describe(error) });
            resolve();
          },
          complete: () => {
            print({ id, event: 'complete' });
            resolve();
          },
        });
      }),
  ),
);
settled = true;
await client.dispose();
process.exit(0);
