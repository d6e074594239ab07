/** Which language a page is shown in: `?lang=` (the switch), its cookie, Accept-Language by q, English. */
import { isLang, type Lang } from "../messages/index.ts";

export function chooseLang(input: { query?: string | undefined; cookie?: string | undefined; acceptLanguage?: string | undefined }): Lang {
  if (isLang(input.query)) return input.query;
  if (isLang(input.cookie)) return input.cookie;
  const ranked = (input.acceptLanguage ?? "")
    .split(",")
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find((m) => m)?.[1];
      return { lang: (tag ?? "").trim().toLowerCase().split("-")[0] as string, q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  return ranked.map((entry) => entry.lang).find(isLang) ?? "en";
}
