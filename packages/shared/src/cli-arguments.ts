/**
 * The shared parsers (host:port, port, duration, log level) throw a ValueError; at commander's edge a
 * command wraps them with asArgument so a bad value is a usage error (one line, exit 1), while anything
 * else a parser throws (a bug) still surfaces as itself.
 */
import { InvalidArgumentError } from "commander";

/** A value given by a user that a shared parser refuses; the message says what was expected. */
export class ValueError extends Error {
  override readonly name: string = "ValueError";
}

/** `parse` as a commander argument parser; `explain` may add the flag's own wording to the message. */
export function asArgument<T>(parse: (value: string) => T, explain?: (message: string, value: string) => string): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      if (err instanceof ValueError) throw new InvalidArgumentError(explain ? explain(err.message, value) : err.message);
      throw err;
    }
  };
}
