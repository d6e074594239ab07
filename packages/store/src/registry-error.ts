/** A registry operation that cannot be done, with the code `boxcert admin` prints: not_found, conflict or invalid. */
export class RegistryError extends Error {
  constructor(
    readonly code: "not_found" | "conflict" | "invalid",
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

/** A unique constraint refused a write (SQLite or PostgreSQL): the row is there already. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === "23505" || e.code === "SQLITE_CONSTRAINT_UNIQUE" || /UNIQUE constraint/.test(e.message ?? "");
}
