export * from "./errors.ts";
export * from "./names.ts";
export * from "./wire.ts";
export * from "./backoff.ts";
export * from "./atomic-file.ts";
export * from "./tls-policy.ts";
