// Many rows for one statement as ONE bound value: D1 binds at most 100 parameters a statement,
// so rows bound column by column fit only a handful to an insert (7 columns: 14 rows), and a
// "Scan all" of 1,000 hosts made thousands of statements. A JSON array of arrays read back
// with json_each has no such limit (D1's is 2 MB a value).
import { getTableColumns, is, SQL, sql } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Db } from '../db/index.ts';

/** `(select json_extract(value, '$[0]') as <columns[0]>, … from json_each(?))`: the rows as a
 * table to select from, each row an array in the order of `columns`. */
export function jsonRows(rows: readonly (readonly unknown[])[], columns: readonly string[]): SQL {
  const cols = columns.map((name, i) => sql.raw(`json_extract(value, '$[${i}]') as "${name}"`));
  return sql`(select ${sql.join(cols, sql`, `)} from json_each(${JSON.stringify(rows)}))`;
}

/** `(select value from json_each(?))`: a list of values for `in` / `not in`, of any length. */
export function jsonValues(values: readonly unknown[]): SQL {
  return sql`(select value from json_each(${JSON.stringify(values)}))`;
}

/** A value as drizzle binds it to its column: JSON columns as their text, booleans as 0/1;
 * null (and undefined) as null. */
export const driverValue = (column: SQLiteColumn, value: unknown): unknown => (value === undefined || value === null ? null : column.mapToDriverValue(value));

/** Rows of a table for jsonRows, in the order of its columns (as `insert … select *` lists
 * them): each value as drizzle binds it (JSON columns as their text, booleans as 0/1); a column
 * left out takes its default, or null. */
export function tableRows(table: SQLiteTable, rows: Record<string, unknown>[]): { columns: string[]; rows: unknown[][] } {
  const columns = Object.entries(getTableColumns(table));
  return {
    columns: columns.map(([, c]) => c.name),
    rows: rows.map((row) =>
      columns.map(([key, c]) => {
        const value = row[key] === undefined ? c.default : row[key];
        if (is(value, SQL)) throw new Error(`tableRows: ${c.name} has an SQL default; give its value`);
        return driverValue(c, value);
      }),
    ),
  };
}

/** `insert into <table> select * from <rows> as r [where <where(r)>]`, `perStatement` rows at a
 * time, and on conflict either nothing (`'ignore'`) or the `replace` columns taken from the new
 * row; `returning`: the rows inserted. A query builder, not `db.run(sql)`: drizzle's D1 batch
 * cannot bind a raw statement's parameters (its SQLiteRaw has no prepared `stmt`). */
export function insertRows(
  db: Db,
  table: SQLiteTable,
  values: Record<string, unknown>[],
  opts: {
    perStatement: number;
    onConflict?: 'ignore' | { target: SQLiteColumn | SQLiteColumn[]; replace: string[] };
    where?: (r: SQL) => SQL;
    returning?: boolean;
  },
): BatchItem<'sqlite'>[] {
  const { rows, columns } = tableRows(table, values);
  const byKey = getTableColumns(table);
  const { onConflict } = opts;
  // (`where true`: SQLite's parser needs a where before an upsert clause)
  const where = opts.where?.(sql.raw('r')) ?? sql`true`;
  const out: BatchItem<'sqlite'>[] = [];
  for (let i = 0; i < rows.length; i += opts.perStatement) {
    const insert = db.insert(table).select(sql`select * from ${jsonRows(rows.slice(i, i + opts.perStatement), columns)} as r where ${where}`);
    const resolved =
      onConflict === 'ignore'
        ? insert.onConflictDoNothing()
        : onConflict
          ? insert.onConflictDoUpdate({ target: onConflict.target, set: Object.fromEntries(onConflict.replace.map((key) => [key, sql.raw(`excluded."${byKey[key].name}"`)])) })
          : insert;
    out.push(opts.returning ? resolved.returning() : resolved);
  }
  return out;
}
