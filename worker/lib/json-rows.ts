// Many rows for one statement as ONE bound value: D1 binds at most 100 parameters a statement,
// so rows bound column by column fit only a handful to an insert (7 columns: 14 rows), and a
// "Scan all" of 1,000 hosts made thousands of statements. A JSON array of arrays read back
// with json_each has no such limit (D1's is 2 MB a value).
import { sql, type SQL } from 'drizzle-orm';

/** `(select json_extract(value, '$[0]') as <columns[0]>, … from json_each(?))`: the rows as a
 * table to select from, each row an array in the order of `columns`. */
export function jsonRows(rows: readonly (readonly unknown[])[], columns: readonly string[]): SQL {
  const cols = columns.map((name, i) => sql.raw(`json_extract(value, '$[${i}]') as "${name}"`));
  return sql`(select ${sql.join(cols, sql`, `)} from json_each(${JSON.stringify(rows)}))`;
}

/** `(select value from json_each(?))`: a list of values for `in` / `not in`. */
export function jsonValues(values: readonly unknown[]): SQL {
  return sql`(select value from json_each(${JSON.stringify(values)}))`;
}
