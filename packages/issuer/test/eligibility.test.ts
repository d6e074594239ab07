import { test } from "node:test";
import assert from "node:assert/strict";
import { decideEligibility, lowestFreeSeat, type EligibilityFacts } from "../src/eligibility.ts";

const ok: EligibilityFacts = {
  database: { id: 1, kind: "production" },
  subscription: { id: 1, code: "SUB-1", state: "in_progress", iotBoxSeats: 2 },
  box: null,
  takenSeats: [],
};

test("eligible box gets the lowest free seat", () => {
  assert.deepEqual(decideEligibility(ok, "SUB-1"), { eligible: true, seat: 1 });
  assert.deepEqual(decideEligibility({ ...ok, takenSeats: [1] }, "SUB-1"), { eligible: true, seat: 2 });
  assert.equal(lowestFreeSeat(3, [2, 1]), 3);
  assert.equal(lowestFreeSeat(2, [2, 1]), null);
});

const table: Array<[string, EligibilityFacts, string, string, RegExp]> = [
  ["unknown database", { ...ok, database: null, subscription: null }, "SUB-1", "unknown_database", /not known/],
  ["code mismatch", ok, "SUB-2", "code_mismatch", /does not match/],
  ["staging", { ...ok, database: { id: 1, kind: "staging" } }, "SUB-1", "database_not_production", /staging/],
  ["duplicate", { ...ok, database: { id: 1, kind: "duplicate" } }, "SUB-1", "database_not_production", /duplicate/],
  ["development", { ...ok, database: { id: 1, kind: "development" } }, "SUB-1", "database_not_production", /development/],
  ["paused", { ...ok, subscription: { ...ok.subscription!, state: "paused" } }, "SUB-1", "subscription_not_in_progress", /paused/],
  ["closed", { ...ok, subscription: { ...ok.subscription!, state: "closed" } }, "SUB-1", "subscription_not_in_progress", /closed/],
  ["draft", { ...ok, subscription: { ...ok.subscription!, state: "draft" } }, "SUB-1", "subscription_not_in_progress", /draft/],
  ["no line", { ...ok, subscription: { ...ok.subscription!, iotBoxSeats: 0 } }, "SUB-1", "no_iot_box_line", /no IoT-box line/],
  ["seats full", { ...ok, takenSeats: [1, 2] }, "SUB-1", "no_free_seat", /2 IoT-box seat/],
  [
    "seat reduced under an enrolled box",
    { ...ok, subscription: { ...ok.subscription!, iotBoxSeats: 1 }, box: { id: 1, label: "x", identityKey: "k", seat: 2, revoked: false } },
    "SUB-1",
    "no_free_seat",
    /holds seat 2/,
  ],
  [
    "revoked box",
    { ...ok, box: { id: 1, label: "x", identityKey: "k", seat: 1, revoked: true } },
    "SUB-1",
    "box_revoked",
    /revoked/,
  ],
];

for (const [name, facts, code, reason, message] of table) {
  test(`refusal: ${name}`, () => {
    const decision = decideEligibility(facts, code);
    assert.equal(decision.eligible, false);
    if (decision.eligible) return;
    assert.equal(decision.reason, reason);
    assert.match(decision.message, message);
  });
}

test("order: a wrong code on a staging database says the code, not the kind", () => {
  const decision = decideEligibility({ ...ok, database: { id: 1, kind: "staging" } }, "WRONG");
  assert.equal(decision.eligible ? null : decision.reason, "code_mismatch");
});

test("an enrolled box keeps its seat even when the others are taken", () => {
  const facts = { ...ok, box: { id: 1, label: "x", identityKey: "k", seat: 2, revoked: false }, takenSeats: [1, 2] };
  assert.deepEqual(decideEligibility(facts, "SUB-1"), { eligible: true, seat: 2 });
});
