/**
 * The eligibility decision, made here only: a pure function of the facts the store holds and what the box
 * sent, checked in the contract's order (docs/issuer.md), every refusal reason distinct and saying which
 * kind or state. The store reads the facts and takes the seat this decides (under the subscription's lock).
 */
import { timingSafeEqual, createHash } from "node:crypto";
import { REFUSALS, type RefusalReason } from "@boxcert/shared";
import type { EligibilityFacts } from "@boxcert/store";

export type { EligibilityFacts };

export type Eligibility =
  | { eligible: true; /** the seat the box holds, or the one it would get */ seat: number }
  | { eligible: false; reason: RefusalReason; message: string };

function refuse(reason: RefusalReason, message: string = REFUSALS[reason].message): Eligibility {
  return { eligible: false, reason, message };
}

/** Compares codes without leaking their common prefix through timing. */
function sameCode(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function lowestFreeSeat(seats: number, taken: number[]): number | null {
  const held = new Set(taken);
  for (let seat = 1; seat <= seats; seat++) if (!held.has(seat)) return seat;
  return null;
}

export function decideEligibility(facts: EligibilityFacts, enterpriseCode: string): Eligibility {
  const { database, subscription, box } = facts;
  if (!database || !subscription) return refuse("unknown_database");
  if (!sameCode(subscription.code, enterpriseCode)) return refuse("code_mismatch");
  if (database.kind !== "production") {
    return refuse("database_not_production", `the database is a ${database.kind} database, not the production database`);
  }
  if (subscription.state !== "in_progress") {
    return refuse("subscription_not_in_progress", `the subscription is ${subscription.state.replace("_", " ")}, not in progress`);
  }
  if (subscription.iotBoxSeats <= 0) return refuse("no_iot_box_line");
  if (box?.revoked) return refuse("box_revoked");
  if (box) {
    if (box.seat <= subscription.iotBoxSeats) return { eligible: true, seat: box.seat };
    return refuse(
      "no_free_seat",
      `this box holds seat ${box.seat} but the IoT-box line now has ${subscription.iotBoxSeats} seat(s)`,
    );
  }
  const seat = lowestFreeSeat(subscription.iotBoxSeats, facts.takenSeats);
  if (seat === null) {
    return refuse("no_free_seat", `all ${subscription.iotBoxSeats} IoT-box seat(s) of the subscription are taken`);
  }
  return { eligible: true, seat };
}
