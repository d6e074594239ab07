/**
 * The box's one translation catalogue: every string of its pages, its diagnostics and its errors, per
 * language, read through messages(lang).
 */
import { LANGUAGES } from "@boxcert/shared";
import type { Language } from "@boxcert/shared";
import { EN } from "./en.ts";
import { IT } from "./it.ts";
import type { Messages } from "./en.ts";

export type { Messages, PageMessages, DiagnosticsKey, Notice, ErrorMessages } from "./en.ts";
export type Lang = Language;
export { LANGUAGES };

const CATALOGUE: Record<Lang, Messages> = { en: EN, it: IT };

export function messages(lang: Lang): Messages {
  return CATALOGUE[lang];
}

export function isLang(value: unknown): value is Lang {
  return typeof value === "string" && (LANGUAGES as readonly string[]).includes(value);
}
