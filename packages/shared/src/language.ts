/**
 * Which language a page is shown in, for every boxcert page (the box's homepage, the database's pages):
 * the languages are the catalogue's (LANGUAGES in errors.ts).
 */
import { LANGUAGES, type Language } from "./errors.ts";

export function isLanguage(value: unknown): value is Language {
  return typeof value === "string" && (LANGUAGES as readonly string[]).includes(value);
}

/**
 * The page's language: `?lang=` first (the switch), then the cookie it set, then Accept-Language (by q,
 * the first of ours), then English.
 */
export function chooseLanguage(input: { query?: string | undefined; cookie?: string | undefined; acceptLanguage?: string | undefined }): Language {
  if (isLanguage(input.query)) return input.query;
  if (isLanguage(input.cookie)) return input.cookie;
  const ranked = (input.acceptLanguage ?? "")
    .split(",")
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find((m) => m)?.[1];
      return { lang: (tag ?? "").trim().toLowerCase().split("-")[0] as string, q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  return ranked.map((entry) => entry.lang).find(isLanguage) ?? "en";
}
