// How a storefront screen uses the generated documents: each call's variables and result are typed
// from the SDL, so `tsc` refuses a field the operation does not select, a wrong variable or a
// misused scalar (Decimal and DateTime are strings). Run `make codegen` first: it writes
// src/generated/ (not committed).
import { type DocumentNode, Kind, type OperationDefinitionNode, print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";

import {
  AdjustStockDocument,
  CatalogPageDocument,
  type MoneyFieldsFragment,
  OrderHistoryDocument,
  type OrderSummaryFieldsFragment,
  PlaceOrderDocument,
  ProductPageDocument,
  type ProductCardFieldsFragment,
  type ProductPageQuery,
  RefreshSessionDocument,
  SignInDocument,
  type UserErrorFieldsFragment,
} from "./generated/graphql.js";
import type * as Types from "./generated/schema.js";

/** The document as examples/trusted-documents.json holds it: the operation, then its fragments by name. */
export function documentText(document: DocumentNode): string {
  const operations = document.definitions.filter(
    (definition): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION,
  );
  const fragments = document.definitions
    .filter((definition) => definition.kind === Kind.FRAGMENT_DEFINITION)
    .sort((a, b) => (a.name.value < b.name.value ? -1 : a.name.value > b.name.value ? 1 : 0));
  return [...operations, ...fragments].map((definition) => print(definition)).join("\n\n");
}

export class GraphQLRequestError extends Error {}

/** POST one operation; its variables and result have the types the document carries. */
export async function request<TResult, TVariables extends Record<string, unknown>>(
  endpoint: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  accessToken?: string,
): Promise<TResult> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (accessToken !== undefined) {
    headers["Authorization"] = `Bearer ${accessToken}`;
  }
  const response = await fetch(endpoint, {
    method: "POST",
    headers,
    body: JSON.stringify({ query: documentText(document), variables }),
  });
  const body = (await response.json()) as { data?: TResult | null; errors?: { message: string }[] };
  if (body.errors !== undefined && body.errors.length > 0) {
    throw new GraphQLRequestError(body.errors.map((error) => error.message).join("; "));
  }
  if (body.data === undefined || body.data === null) {
    throw new GraphQLRequestError(`no data (HTTP ${response.status})`);
  }
  return body.data;
}

function refuseUserErrors(errors: UserErrorFieldsFragment[]): void {
  if (errors.length > 0) {
    throw new GraphQLRequestError(errors.map((error) => `${error.code}: ${error.message}`).join("; "));
  }
}

/** Money as a label: the amount stays the exact decimal string the API sent. */
export function formatMoney(money: MoneyFieldsFragment): string {
  return `${money.amount} ${money.currency}`;
}

export async function catalogPage(
  endpoint: string,
  search: string,
  after: string | null = null,
): Promise<{ cards: ProductCardFieldsFragment[]; total: number; next: string | null }> {
  const orderBy: Types.ProductOrder = { field: "PRICE", direction: "ASC" };
  const data = await request(endpoint, CatalogPageDocument, { filter: { search, inStock: true }, orderBy, first: 24, after });
  const { nodes, totalCount, pageInfo } = data.products;
  return { cards: nodes, total: totalCount, next: pageInfo.hasNextPage ? pageInfo.endCursor : null };
}

export async function productPage(
  endpoint: string,
  slug: string,
): Promise<{ product: ProductPageQuery["product"]; bylines: string[] }> {
  const { product } = await request(endpoint, ProductPageDocument, { slug, reviewsFirst: 5 });
  const bylines = (product?.reviews.nodes ?? []).map(
    (review) => `${review.author.name}, ${review.createdAt}: ${review.rating}/5`,
  );
  return { product, bylines };
}

export interface Session {
  accessToken: string;
  refreshToken: string;
  expiresAt: string;
  roles: Types.Role[];
}

export async function signIn(endpoint: string, email: string, password: string): Promise<Session> {
  const { tokenCreate } = await request(endpoint, SignInDocument, { input: { email, password } });
  refuseUserErrors(tokenCreate.userErrors);
  if (tokenCreate.accessToken === null || tokenCreate.refreshToken === null || tokenCreate.accessTokenExpiresAt === null) {
    throw new GraphQLRequestError("no token pair");
  }
  return {
    accessToken: tokenCreate.accessToken,
    refreshToken: tokenCreate.refreshToken,
    expiresAt: tokenCreate.accessTokenExpiresAt,
    roles: tokenCreate.user?.roles ?? [],
  };
}

export async function refresh(endpoint: string, session: Session): Promise<Session> {
  const { tokenRefresh } = await request(endpoint, RefreshSessionDocument, { input: { refreshToken: session.refreshToken } });
  refuseUserErrors(tokenRefresh.userErrors);
  const { accessToken, refreshToken, accessTokenExpiresAt } = tokenRefresh;
  if (accessToken === null || refreshToken === null || accessTokenExpiresAt === null) {
    throw new GraphQLRequestError("no token pair");
  }
  return { ...session, accessToken, refreshToken, expiresAt: accessTokenExpiresAt };
}

export async function checkout(
  endpoint: string,
  session: Session,
  cart: Types.OrderLineInput[],
  idempotencyKey: string,
): Promise<OrderSummaryFieldsFragment> {
  const { orderPlace } = await request(endpoint, PlaceOrderDocument, { input: { items: cart, idempotencyKey } }, session.accessToken);
  refuseUserErrors(orderPlace.userErrors);
  if (orderPlace.order === null) {
    throw new GraphQLRequestError("no order");
  }
  return orderPlace.order;
}

export async function orderHistory(endpoint: string, session: Session): Promise<OrderSummaryFieldsFragment[]> {
  const { me } = await request(endpoint, OrderHistoryDocument, { first: 10 }, session.accessToken);
  return me?.orders?.nodes ?? [];
}

export async function adjustStock(
  endpoint: string,
  session: Session,
  productId: string,
  delta: number,
): Promise<{ sku: string; stock: number | null }> {
  const { productStockAdjust } = await request(endpoint, AdjustStockDocument, { input: { productId, delta } }, session.accessToken);
  refuseUserErrors(productStockAdjust.userErrors);
  if (productStockAdjust.product === null) {
    throw new GraphQLRequestError("no product");
  }
  return { sku: productStockAdjust.product.sku, stock: productStockAdjust.product.stock };
}

/** Every generated document, for checking them against the trusted-documents manifest. */
export const DOCUMENTS: Record<string, DocumentNode> = {
  AdjustStock: AdjustStockDocument,
  CatalogPage: CatalogPageDocument,
  OrderHistory: OrderHistoryDocument,
  PlaceOrder: PlaceOrderDocument,
  ProductPage: ProductPageDocument,
  RefreshSession: RefreshSessionDocument,
  SignIn: SignInDocument,
};
