/*
 * The storefront's GraphiQL page (api/graphiql.py builds its HTML).
 *
 * The page's Content-Security-Policy allows scripts from this server only, and no inline script:
 * what differs per mode (the example documents, the headers hint) comes from the page's
 * `<script type="application/json" id="graphiql-config">` block, which the browser parses as data
 * and never runs.
 */
(() => {
  "use strict";

  const container = document.getElementById("graphiql");
  if (!window.React || !window.ReactDOM || !window.GraphiQL || !window.GraphiQLPluginExplorer) {
    container.textContent =
      "GraphiQL's files are missing on this server: run `make install` (python -m api.graphiql).";
    return;
  }
  const config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // The page is served by the GraphQL endpoint itself: queries and mutations go to this path over
  // HTTP, subscriptions to the same path over WebSocket (graphql-transport-ws).
  const endpoint = new URL(window.location.pathname, window.location.href);
  const socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  const send = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href });

  // The headers editor opens on a placeholder Authorization header. Until a real token replaces it,
  // the header is left out (of requests and of the WebSocket's connection_init alike), so the
  // examples run anonymously instead of failing as a malformed credential.
  function withoutPlaceholder(headers) {
    if (!headers) {
      return headers;
    }
    return Object.fromEntries(
      Object.entries(headers).filter(
        ([name, value]) =>
          !(name.toLowerCase() === "authorization" && String(value).trim() === config.placeholder),
      ),
    );
  }

  function fetcher(params, options) {
    return send(params, { ...options, headers: withoutPlaceholder(options && options.headers) });
  }

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultQuery: config.query,
      defaultTabs: config.tabs,
      defaultHeaders: config.headers,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      // Tokens pasted into the headers stay out of localStorage; the hint comes back on reload.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
      // Tabs are kept under a namespace of this page's own.
      storage: GraphiQL.createLocalStorage({ namespace: "storefront" }),
    }),
  );
})();
