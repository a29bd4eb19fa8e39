// A small app flow written against the client generated from /v1/schema/ (openapi-typescript
// + openapi-fetch). `tsc --strict` must accept it as written: every path, body and field below
// is checked against the generated types. Then it runs against a live server
// (BIDDT_BASE_URL) and exits non-zero on the first surprise.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

// Each operation's error responses are its own components: `code` is the enum of its codes.
type BidConflict = components["schemas"]["ListingsBidsCreateError409Response"];
type ClientError = components["schemas"]["AuthRefreshCreateError401Response"];

const baseUrl = process.env.BIDDT_BASE_URL ?? "http://127.0.0.1:8000";
const [sellerPhone, sellerCode, bidderPhone, bidderCode, rivalPhone, rivalCode] =
  (process.env.BIDDT_CLIENT_LOGINS ?? "").split(",");

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(`client check failed: ${message}`);
  }
}

interface Session {
  access: string;
  refresh: string;
  api: ReturnType<typeof createClient<paths>>;
}

async function login(phone: string | undefined, code: string | undefined): Promise<Session> {
  check(phone && code, "BIDDT_CLIENT_LOGINS names three phone:code logins");
  const anonymous = createClient<paths>({ baseUrl });
  const sent = await anonymous.POST("/v1/auth/phone/send-code", {
    body: { phone_number: phone },
  });
  check(sent.response.status === 202 && sent.data?.expires_in === 600, "send-code is 202");
  const verified = await anonymous.POST("/v1/auth/phone/verify", {
    body: { phone_number: phone, code },
  });
  check(verified.data, `verify answered ${verified.response.status}`);
  const { access, refresh } = verified.data;
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${access}` } });
  return { access, refresh, api };
}

// openapi-fetch types `error` as the union of the operation's error bodies; the status
// tells which one came, and this narrows to it.
function isErrorBody<T extends BidConflict | ClientError>(body: unknown): body is T {
  return typeof body === "object" && body !== null && "errors" in body;
}

async function main(): Promise<void> {
  const seller = await login(sellerPhone, sellerCode);
  const bidder = await login(bidderPhone, bidderCode);
  const rival = await login(rivalPhone, rivalCode);

  // The seller lists an item and publishes it.
  const endsAt = new Date(Date.now() + 2 * 24 * 3600 * 1000).toISOString();
  const created = await seller.api.POST("/v1/listings", {
    body: {
      title: "Generated-client check: a vintage lamp",
      starting_price_cents: 1000,
      auction_type: "auction",
      ends_at: endsAt,
    },
  });
  check(created.data, `create answered ${created.response.status}`);
  const listingId = created.data.id;
  const published = await seller.api.POST("/v1/listings/{listing_id}/publish", {
    params: { path: { listing_id: listingId } },
  });
  check(published.data?.status === "active", `publish answered ${published.response.status}`);

  // One bidder leads with a maximum; the rival's low bid is refused with the minimum as a
  // number the app reads from the typed error item, not from the text.
  const bid = await bidder.api.POST("/v1/listings/{listing_id}/bids", {
    params: { path: { listing_id: listingId } },
    body: { amount_cents: 1000, max_amount_cents: 5000 },
  });
  check(bid.data?.is_leading === true, `bid answered ${bid.response.status}`);
  const minimum: number = bid.data.listing.minimum_next_bid_cents;

  const low = await rival.api.POST("/v1/listings/{listing_id}/bids", {
    params: { path: { listing_id: listingId } },
    body: { amount_cents: minimum - 1 },
  });
  check(low.response.status === 409, `a low bid answered ${low.response.status}`);
  check(isErrorBody<BidConflict>(low.error), "a 409 body in the error shape");
  const item = low.error.errors[0];
  check(item?.code === "bid_too_low", `code ${item?.code}`);
  const typedMinimum: number | undefined = item.minimum_next_bid_cents;
  check(typedMinimum === minimum, `minimum_next_bid_cents ${typedMinimum} != ${minimum}`);

  // The rival bids the minimum: accepted, but the leader's proxy keeps the lead.
  const raise = await rival.api.POST("/v1/listings/{listing_id}/bids", {
    params: { path: { listing_id: listingId } },
    body: { amount_cents: typedMinimum },
  });
  check(raise.data?.is_leading === false, `the rival's bid answered ${raise.response.status}`);

  // Logging out with POST kills the refresh token.
  const out = await rival.api.POST("/v1/auth/logout", { body: { refresh: rival.refresh } });
  check(out.response.status === 204, `logout answered ${out.response.status}`);
  const dead = await rival.api.POST("/v1/auth/refresh", { body: { refresh: rival.refresh } });
  check(dead.response.status === 401, `a dead refresh answered ${dead.response.status}`);
  check(isErrorBody<ClientError>(dead.error), "a 401 body in the error shape");
  check(dead.error.errors.length === 1 && dead.error.errors[0]?.code === "token_not_valid",
        "a 401 is one token_not_valid item");

  console.log(JSON.stringify({ ok: true, listing: listingId, minimum }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
