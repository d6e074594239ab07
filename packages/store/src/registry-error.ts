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
