"""What GraphiQL opens on: a working query of the catalog, and how to sign in.

In development (SPEC §6) the first tab names the demo accounts and a second tab signs in as the demo
customer. Elsewhere the page stays neutral: no account named, and no tab that invites typing a password
(GraphiQL keeps its tabs in the browser's localStorage; it is told not to keep headers).
"""

AUTHORIZATION_PLACEHOLDER = "Bearer <paste accessToken from tokenCreate>"
# The headers editor opens on this; the page's fetcher leaves the header out while it is unchanged.
HEADERS_HINT = '{\n  "Authorization": "' + AUTHORIZATION_PLACEHOLDER + '"\n}'

FIRST_PRODUCTS = """\
query FirstProducts {
  products(first: 10) {
    totalCount
    nodes {
      name
      price { amount currency }
      inStock
      category { name }
      rating { average count }
    }
  }
}
"""

DEMO_INTRODUCTION = """\
# Welcome to the storefront's GraphiQL. Run this query with ▶ (or Ctrl-Enter).
# Ctrl-Space completes a field; Docs and Explorer (left) show the whole schema.
#
# The catalog is public. To act as a user, sign in with a demo account, password
# `storefront-demo`: admin@example.com, staff@example.com or customer@example.com.
#   1. Run the SignIn tab (the tokenCreate mutation); copy `accessToken` from its answer.
#   2. Back in this tab, replace the placeholder in Headers (below) with it:
#        {"Authorization": "Bearer eyJ..."}
#      Each tab keeps its own headers.
#   3. Run again. As staff, add `stock` to the fields; `me { email roles }` tells who you are.
# An access token lasts minutes: sign in again, or trade the refresh token in with tokenRefresh.
"""

NEUTRAL_INTRODUCTION = """\
# Run this query with ▶ (or Ctrl-Enter).
#
# The catalog is public. To act as a user, sign in with the tokenCreate mutation, then replace
# the placeholder in Headers (below) with its `accessToken`: {"Authorization": "Bearer eyJ..."}.
# A service sends its API key instead: {"X-API-Key": "..."}.
#
# Ctrl-Space completes a field and Docs (left) shows the schema when this server lets you read it,
# which it may allow to some roles only: after signing in, re-fetch it with Shift-Ctrl-R.
"""

DEMO_SIGN_IN = """\
# Sign in as the demo customer (staff: staff@example.com, admin: admin@example.com, same password).
# Copy `accessToken` from the answer into Headers (below) of the tab you run next, in place of
# the placeholder.
mutation SignIn {
  tokenCreate(input: { email: "customer@example.com", password: "storefront-demo" }) {
    accessToken
    accessTokenExpiresAt
    user { name email roles }
    userErrors { field code message }
  }
}
"""


def examples(*, demo: bool) -> dict[str, object]:
    """The page's default document and tabs (GraphiQL's `defaultQuery` and `defaultTabs`)."""
    first = (DEMO_INTRODUCTION if demo else NEUTRAL_INTRODUCTION) + FIRST_PRODUCTS
    documents = (first, DEMO_SIGN_IN) if demo else (first,)
    return {
        "query": first,
        "tabs": [{"query": document, "headers": HEADERS_HINT} for document in documents],
    }
