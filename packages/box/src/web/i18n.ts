/** Which language a page is shown in (the strings themselves are in ../messages/). */

export const LANG_COOKIE = "boxcert_lang";

/** The page's language: `?lang=`, its cookie, Accept-Language by q, English (one rule for every page). */
export { chooseLanguage as chooseLang } from "@boxcert/shared";
