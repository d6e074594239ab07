/** The pages' translation catalogue, per language, read through messages(lang). */
import { LANGUAGES, type Language } from "@boxcert/shared";
import { EN } from "./en.ts";
import { IT } from "./it.ts";
import type { Messages } from "./en.ts";

export type { Messages, Refusal } from "./en.ts";
export type Lang = Language;
export { LANGUAGES };

const CATALOGUE: Record<Lang, Messages> = { en: EN, it: IT };

export function messages(lang: Lang): Messages {
  return CATALOGUE[lang];
}

export function isLang(value: unknown): value is Lang {
  return typeof value === "string" && (LANGUAGES as readonly string[]).includes(value);
}
