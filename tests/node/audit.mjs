// Run every graphql-http server audit (the GraphQL-over-HTTP spec's conformance checks) against a
// live server and print the results as one JSON array on stdout.
//
//   node tests/node/audit.mjs http://127.0.0.1:8000/graphql [Header-Name:value ...]
//
// Extra headers are added to every request the audits make, as a client that follows the server's
// documented rules (its CSRF-prevention header) would send them.
import { serverAudits } from 'graphql-http';

const [url, ...headerArguments] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs <graphql url> [Header-Name:value ...]');
  process.exit(2);
}
const extraHeaders = Object.fromEntries(
  headerArguments.map((argument) => {
    const separator = argument.indexOf(':');
    return [argument.slice(0, separator).trim(), argument.slice(separator + 1).trim()];
  }),
);

async function fetchWithHeaders(input, init = {}) {
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(extraHeaders)) {
    headers.set(name, value);
  }
  return fetch(input, { ...init, headers });
}

// One audit at a time: the report should not depend on how many requests the server takes at once.
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetchWithHeaders })) {
  const result = await audit.fn();
  let body;
  if (result.response) {
    body = await result.response.text().catch(() => undefined);
  }
  results.push({
    id: result.id,
    name: result.name,
    status: result.status,
    reason: result.reason,
    responseStatus: result.response?.status,
    responseBody: body,
  });
}
process.stdout.write(JSON.stringify(results) + '\n');
