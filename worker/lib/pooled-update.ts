// Many rows' updates as ONE statement: `update … from json_each(?)`. Relay responses that
// arrive together (relay-apply.ts) each change their host row and finish their job; one
// statement per response per table was most of what the Worker did during "Scan all" (drizzle
// building each statement's SQL, D1 running each on its own; issue 11). The rows travel as one
// JSON value, as in json-rows.ts (which says why).
import { and, getTableColumns, sql, type SQL } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Db } from '../db/index.ts';
import { driverValue } from './json-rows.ts';

/** Rows per statement: a row is a JSON object of a few hundred bytes to a few kB (a host's
 * held packages and warnings), so 200 stay far below D1's 2 MB a value. */
export const ROWS_PER_POOLED_UPDATE = 200;

/** One row's new values, by the table's column keys (undefined: left as it is). */
export interface PooledRow {
  id: string;
  set: Record<string, unknown>;
}

/** `update <table> set <column> = <the row's value>, … from json_each(?) as p where <id> = the
 * row's id [and guard] returning *`: one statement per distinct set of columns (and per
 * ROWS_PER_POOLED_UPDATE rows). Each value is bound as drizzle would bind it (JSON columns as
 * their text, booleans as 0/1). `rules` wrap a column's new value in an expression of it (the
 * old row's columns are at hand). Ids must be distinct: merge a row's changes first. */
export function pooledUpdates(
  db: Db,
  table: SQLiteTable,
  rows: PooledRow[],
  opts: { guard?: SQL; rules?: Record<string, (value: SQL) => SQL> } = {},
): BatchItem<'sqlite'>[] {
  const columns = getTableColumns(table) as Record<string, SQLiteColumn>;
  const idColumn = columns.id;
  if (!idColumn) throw new Error('pooledUpdates: the table has no id column');
  const shapes = new Map<string, PooledRow[]>();
  for (const row of rows) {
    const keys = Object.keys(row.set).filter((k) => row.set[k] !== undefined);
    for (const k of keys) if (!columns[k] || k === 'id') throw new Error(`pooledUpdates: no column ${k} to set`);
    if (keys.length === 0) continue;
    const shape = keys.sort().join(',');
    const group = shapes.get(shape);
    if (group) group.push(row);
    else shapes.set(shape, [row]);
  }
  const out: BatchItem<'sqlite'>[] = [];
  for (const [shape, group] of shapes) {
    const keys = shape.split(',');
    // (the keys are the table's own column keys, checked above: safe as JSON paths)
    const set = Object.fromEntries(
      keys.map((k) => {
        const value = sql.raw(`json_extract(p.value, '$.${k}')`);
        return [k, opts.rules?.[k]?.(value) ?? value];
      }),
    );
    for (let i = 0; i < group.length; i += ROWS_PER_POOLED_UPDATE) {
      const values = group.slice(i, i + ROWS_PER_POOLED_UPDATE).map((r) => ({
        id: r.id,
        ...Object.fromEntries(keys.map((k) => [k, driverValue(columns[k], r.set[k])])),
      }));
      out.push(
        db
          .update(table)
          .set(set)
          .from(sql`json_each(${JSON.stringify(values)}) as p`)
          .where(and(sql`${idColumn} = json_extract(p.value, '$.id')`, opts.guard))
          .returning(),
      );
    }
  }
  return out;
}
