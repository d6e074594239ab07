/**
 * Queries built once with kysely and then run with new values, for the issuance path. Building and
 * compiling a kysely query (parsing the builder calls, visiting and freezing the node tree) cost more
 * than running the statement on SQLite; the SQL text only depends on the dialect, so it is compiled once
 * per store and run as `CompiledQuery.raw(sql, parameters)`. The same code serves SQLite and PostgreSQL,
 * and the SQLite store's prepared-statement cache (db.ts) finds the statement by its unchanged text.
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from "kysely";

/**
 * Stands where a run-time value goes while the query is built: kysely passes it through as a parameter,
 * and compiling tells at which positions it came out, whatever order the dialect puts clauses in.
 */
class Slot {
  constructor(readonly name: string) {}
}

type Binding = { slot: string } | { constant: unknown };

export class PreparedQuery<Values extends Record<string, unknown>, Row> {
  private constructor(
    readonly sql: string,
    private readonly bindings: readonly Binding[],
  ) {}

  /**
   * Compiles `build(slots)` once. Each slot must be used as a value (a comparison operand, an inserted or
   * set value), never as a column or table name; every parameter that is not a slot (`limit(1)`) is kept
   * as it was compiled.
   */
  static build<Values extends Record<string, unknown>, Row>(
    names: readonly (keyof Values & string)[],
    build: (slots: Values) => Compilable<Row>,
  ): PreparedQuery<Values, Row> {
    const slots = Object.fromEntries(names.map((name) => [name, new Slot(name)])) as unknown as Values;
    const compiled = build(slots).compile();
    const bindings = compiled.parameters.map((p): Binding => (p instanceof Slot ? { slot: p.name } : { constant: p }));
    const unused = names.filter((name) => !bindings.some((b) => "slot" in b && b.slot === name));
    if (unused.length > 0) throw new Error(`prepared query never uses ${unused.join(", ")}: ${compiled.sql}`);
    return new PreparedQuery(compiled.sql, bindings);
  }

  /** Runs the statement on `db` (the store or a transaction) with these values. */
  execute(db: Pick<Kysely<never>, "executeQuery">, values: Values): Promise<QueryResult<Row>> {
    const parameters = this.bindings.map((b) => ("slot" in b ? values[b.slot] : b.constant));
    return db.executeQuery(CompiledQuery.raw(this.sql, parameters) as CompiledQuery<Row>);
  }
}
