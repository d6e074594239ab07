/** Which language a page is shown in: `?lang=` (the switch), its cookie, Accept-Language by q, English. */
export { chooseLanguage as chooseLang } from "@boxcert/shared";
