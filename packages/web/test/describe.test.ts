/** The words of @boxcert/web: every reason in English and Italian, with the zone and the box's page filled in. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, zoneOf, LANGUAGES, type Diagnosis, type Place, type Reason, type CertificateDetail } from "@boxcert/web";

const PLACE: Place = { host: "192-168-1-42.k7fidglmun75foxe.boxcert.example", zone: "boxcert.example", boxPage: "http://192.168.1.42:8069/" };
const REASONS: Reason[] = ["lna-denied", "lna-prompt", "name-not-resolving", "certificate", "unreachable", "mixed-content", "name-or-certificate"];
const DETAILS: CertificateDetail[] = ["untrusted", "expired", "missing", "wrong-name"];

function diagnosis(reason: Reason, over: Partial<Diagnosis> = {}): Diagnosis {
  return { ok: false, via: null, reason, detail: null, notAfter: null, errorCode: null, ...over };
}

/** Every reason, the certificate once per detail. */
function everyDiagnosis(): Diagnosis[] {
  return REASONS.flatMap((reason) => (reason === "certificate" ? DETAILS.map((detail) => diagnosis(reason, { detail })) : [diagnosis(reason)]));
}

test("every reason has a message and advice in both languages, all placeholders filled", () => {
  assert.deepEqual(LANGUAGES, ["en", "it"]);
  for (const d of everyDiagnosis()) {
    const texts = LANGUAGES.map((lang) => describe(d, lang, PLACE));
    for (const [i, text] of texts.entries()) {
      const where = `${d.reason}/${d.detail} ${LANGUAGES[i]}`;
      assert.ok(text, where);
      assert.ok(text.message.length > 20, where);
      assert.ok(text.advice.length >= 1 && text.advice.every((line) => line.length > 10), where);
      assert.doesNotMatch([text.message, ...text.advice].join("\n"), /\{\w+\}/, `${where}: a placeholder left`);
    }
    assert.notEqual(texts[0]!.message, texts[1]!.message, `${d.reason}/${d.detail}: translated`);
  }
});

test("the messages are distinct: a cashier can tell the cases apart", () => {
  const messages = everyDiagnosis().map((d) => describe(d, "en", PLACE)!.message);
  assert.equal(new Set(messages).size, messages.length);
});

test("reached over HTTPS: nothing to say", () => {
  assert.equal(describe({ ok: true, via: "https", reason: null, detail: null, notAfter: null, errorCode: null }, "it", PLACE), null);
});

test("the router fix names the zone (dnsmasq's rebind-domain-ok) and the box's Diagnostics page", () => {
  for (const lang of LANGUAGES) {
    const text = describe(diagnosis("name-not-resolving", { ok: true, via: "ip" }), lang, PLACE)!;
    const all = [text.message, ...text.advice].join("\n");
    assert.ok(all.includes("rebind-domain-ok=/boxcert.example/"), lang);
    assert.ok(all.includes("http://192.168.1.42:8069/diagnostics"), lang);
    assert.ok(all.includes(PLACE.host), lang);
  }
});

test("a degraded result says, last, that the page talks plain HTTP to the box's address", () => {
  const en = describe(diagnosis("name-not-resolving", { ok: true, via: "ip" }), "en", PLACE)!;
  assert.match(en.advice.at(-1)!, /^Meanwhile this page talks to the box over plain HTTP at http:\/\/192\.168\.1\.42:8069\/: it works, unencrypted/);
  const it = describe(diagnosis("certificate", { ok: true, via: "ip", detail: "untrusted" }), "it", PLACE)!;
  assert.match(it.advice.at(-1)!, /HTTP semplice all'indirizzo http:\/\/192\.168\.1\.42:8069\//);
  const failed = describe(diagnosis("unreachable"), "en", PLACE)!;
  assert.ok(!failed.advice.some((line) => line.includes("plain HTTP")), "not said when nothing works");
});

test("an expired certificate: its date and the box's error code", () => {
  const d = diagnosis("certificate", { detail: "expired", notAfter: "2026-11-30T10:00:00.000Z", errorCode: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 503" });
  assert.equal(describe(d, "en", PLACE)!.message, "The box's HTTPS certificate expired on 2026-11-30, so the browser refuses its HTTPS address. The box shows ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 503.");
  assert.equal(describe(d, "it", PLACE)!.message, "Il certificato HTTPS della box è scaduto il 2026-11-30, quindi il browser rifiuta il suo indirizzo HTTPS. La box mostra ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 503.");
  assert.doesNotMatch(describe(diagnosis("certificate", { detail: "missing" }), "en", PLACE)!.message, /shows/, "no code, no sentence");
});

test("local network access: where to allow it (site settings, the icon left of the address bar)", () => {
  assert.match(describe(diagnosis("lna-denied"), "en", PLACE)!.advice.join(" "), /Site settings.*"Local network access" to Allow/);
  assert.match(describe(diagnosis("lna-denied"), "it", PLACE)!.advice.join(" "), /Impostazioni sito.*"Accesso alla rete locale" su Consenti/);
  assert.match(describe(diagnosis("lna-prompt"), "en", PLACE)!.advice[0]!, /Allow in the browser's question/);
});

test("zoneOf: the name after the address and the label", () => {
  assert.equal(zoneOf("192-168-1-42.k7fidglmun75foxe.boxcert.example"), "boxcert.example");
  assert.equal(zoneOf("fd00--2.k7fidglmun75foxe.iot.vendor.example"), "iot.vendor.example");
});

test("docs/web.md holds every message in both languages, as a page shows them for its example box", () => {
  const docs = readFileSync(join(import.meta.dirname, "../../../docs/web.md"), "utf8").replace(/\s+/g, " ");
  for (const d of everyDiagnosis()) {
    for (const lang of LANGUAGES) {
      const text = describe({ ...d, notAfter: d.detail === "expired" ? "2026-11-30T10:00:00Z" : null }, lang, PLACE)!;
      assert.ok(docs.includes(text.message), `docs/web.md lacks the ${lang} message for ${d.reason}/${d.detail}: ${text.message}`);
    }
  }
  for (const lang of LANGUAGES) {
    const degraded = describe(diagnosis("name-not-resolving", { ok: true, via: "ip" }), lang, PLACE)!;
    assert.ok(docs.includes(degraded.advice.at(-1)!), `the ${lang} degraded line`);
  }
});
